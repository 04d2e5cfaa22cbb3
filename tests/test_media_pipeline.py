"""The pipelined stream (decode ahead, write behind): frames keep their order, nothing is lost,
and an error on any side ends the stream with that error and a closed writer."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mbv1.errors import MBV1Error
from mbv1.media import VideoSink, resolve_source, run_stream


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("v") / "count.mp4"
    sink = VideoSink(path, 25.0, (64, 48))
    for i in range(30):
        sink.write(np.full((48, 64, 3), 8 * i, np.uint8))  # brightness encodes the index
    sink.close()
    return resolve_source(str(path))


class Recorder:
    def __init__(self, fail_at: int | None = None):
        self.seen, self.closed, self.fail_at = [], False, fail_at

    def add(self, frame, result):
        if self.fail_at is not None and len(self.seen) == self.fail_at:
            raise MBV1Error("cannot write: disk full")
        self.seen.append((frame.index, result))

    def close(self):
        self.closed = True


def _brightness(rgb):
    return [int(round(float(rgb.mean()) / 8))]


@pytest.mark.parametrize("pipelined", [True, False])
def test_frames_in_order_and_all_of_them(video, pipelined):
    w = Recorder()
    stats = run_stream(video, _brightness, w, pipelined=pipelined)
    assert stats.frames == 30 and w.closed and stats.wall_s > 0
    assert [i for i, _ in w.seen] == list(range(30))
    assert [r[0] for _, r in w.seen] == list(range(30))  # each result with its own frame


def test_a_failing_model_or_writer_ends_the_stream(video):
    def boom(rgb):
        if _brightness(rgb)[0] == 5:
            raise MBV1Error("model failed on frame 5")
        return []

    w = Recorder()
    with pytest.raises(MBV1Error, match="frame 5"):
        run_stream(video, boom, w)
    assert w.closed and [i for i, _ in w.seen] == [0, 1, 2, 3, 4]
    w = Recorder(fail_at=3)
    with pytest.raises(MBV1Error, match="disk full"):
        run_stream(video, _brightness, w)
    assert w.closed
    assert not [t for t in threading.enumerate() if t.name.startswith("mbv1-")]
