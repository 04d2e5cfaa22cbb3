"""Frames in, frames out: images, folders, globs, video files and cameras as one stream.

Shared by ``mbv1 detect`` and ``mbv1 faces``. Frames stream one at a time (a long video never
sits in memory); decoding problems become one-line :class:`MBV1Error` messages.
"""

from __future__ import annotations

import glob as globlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mbv1.errors import MBV1Error

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv"}


@dataclass
class Frame:
    """One RGB frame: ``rgb`` is ``uint8 [H, W, 3]``; ``index`` counts decoded frames of a video
    (or images of a folder); ``time_s`` is the video timestamp (None for images)."""

    rgb: np.ndarray
    index: int
    path: Path | None
    time_s: float | None = None
    prepared: object = None  # what run_stream's ``prepare`` made of it


@dataclass
class Source:
    """What a SOURCE argument resolved to: ``kind`` is image(s), video or camera."""

    kind: str  # "images" | "video" | "camera"
    paths: list[Path]
    camera: int | None = None
    fps: float | None = None
    size: tuple[int, int] | None = None  # (width, height) of a video
    frame_count: int | None = None

    @property
    def is_video(self) -> bool:
        return self.kind in ("video", "camera")


def resolve_source(source: str) -> Source:
    """An image, a folder, a glob, a video file or a camera index → :class:`Source`."""
    if source.isdigit():
        return Source("camera", [], camera=int(source))
    path = Path(source).expanduser()
    if any(c in source for c in "*?["):
        paths = sorted(Path(p) for p in globlib.glob(os.path.expanduser(source), recursive=True)
                       if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise MBV1Error(f"no images match {source!r} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        return Source("images", paths)
    if not path.exists():
        raise MBV1Error(f"source not found: {source} (give an image, a folder, a glob, a video or a camera index)")
    if path.is_dir():
        paths = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        videos = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        if not paths and not videos:
            raise MBV1Error(f"folder {path} holds no images or videos")
        if not paths:
            raise MBV1Error(f"folder {path} holds only videos: pass one of them, e.g. {videos[0]}")
        return Source("images", paths)
    if path.stat().st_size == 0:
        raise MBV1Error(f"{path} is empty (0 bytes)")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return probe_video(path)
    return Source("images", [path])


def probe_video(path: Path) -> Source:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        ok, _ = cap.read() if cap.isOpened() else (False, None)
        if not ok:
            raise MBV1Error(f"cannot decode video {path}: OpenCV could not read a frame "
                            "(corrupt file or unsupported codec; try re-encoding it with ffmpeg)")
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    finally:
        cap.release()
    return Source("video", [path], fps=fps, size=(w, h), frame_count=n)


def iter_frames(src: Source, vid_stride: int = 1, on_bad_image: str = "skip",
                warn=None) -> Iterator[Frame]:
    """Yield frames of a resolved source; every ``vid_stride``-th frame of a video.

    Unreadable images are reported through ``warn(message)`` and skipped, or raise when
    ``on_bad_image == "fail"``.
    """
    if src.kind == "images":
        from mbv1.datasets.images import load_rgb

        for i, p in enumerate(src.paths):
            try:
                yield Frame(np.asarray(load_rgb(p)), i, p)
            except MBV1Error as e:
                if on_bad_image == "fail" or len(src.paths) == 1:
                    raise
                if warn:
                    warn(f"skipped: {e}")
        return
    import cv2

    cap = cv2.VideoCapture(src.camera if src.kind == "camera" else str(src.paths[0]))
    if not cap.isOpened():
        raise MBV1Error(f"cannot open {'camera ' + str(src.camera) if src.kind == 'camera' else src.paths[0]}")
    fps = src.fps or cap.get(cv2.CAP_PROP_FPS) or 25.0
    index = 0
    try:
        while True:
            ok = cap.grab()
            if not ok:
                break
            if index % vid_stride == 0:
                ok, bgr = cap.retrieve()
                if not ok:
                    break
                yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index,
                            src.paths[0] if src.paths else None, index / fps)
            index += 1
    finally:
        cap.release()


class VideoSink:
    """Writes annotated frames as an mp4v .mp4 at the source's fps and size (OpenCV's pip
    wheels cannot encode H.264). Written to a temporary name and renamed on close."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]):
        import cv2

        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.stem}.tmp{self.path.suffix}")
        self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self.writer.isOpened():
            raise MBV1Error(f"cannot write video {self.path} (OpenCV VideoWriter failed)")
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        import cv2

        self.writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        self.writer.release()
        os.replace(self.tmp, self.path)


class PredictionWriter:
    """What a prediction run writes into its folder, for ``mbv1 detect`` and ``mbv1 faces``.

    A video (or camera): an annotated ``<stem>.mp4`` at the source's fps and size and
    ``<stem>.jsonl``, one line per processed frame: ``{"frame", "time_s", **to_json(result)}``.
    Images: annotated copies (same name; other formats as .png) and either
    ``predictions.json``, the concatenated ``coco(frame, result)`` records (COCO results), or,
    without ``coco``, ``predictions.jsonl`` with ``{"file", "image", **to_json(result)}`` per
    image. Every file is written under a temporary name and renamed when complete.

    Args:
        annotate: ``annotate(frame, result) -> uint8 RGB`` frame with the result drawn on it.
        to_json: ``to_json(result) -> dict`` of plain values.
        coco: ``coco(frame, result) -> list of COCO result dicts`` (images only).
    """

    def __init__(self, src: Source, out_dir: Path, annotate, to_json, coco=None):
        self.src, self.out_dir = src, Path(out_dir)
        self.annotate, self.to_json, self.coco = annotate, to_json, coco
        self.video = self.sink = None
        self.records: list[dict] = []
        if src.is_video:
            stem = src.paths[0].stem if src.paths else f"camera{src.camera}"
            self.video = self.out_dir / f"{stem}.mp4"
            self.predictions = self.out_dir / f"{stem}.jsonl"
        else:
            self.predictions = self.out_dir / ("predictions.json" if coco else "predictions.jsonl")
        self._tmp = self.predictions.with_name(f".{self.predictions.name}.tmp")
        self._jsonl = None if coco and not src.is_video else open(self._tmp, "w")  # noqa: SIM115

    def add(self, frame: Frame, result) -> None:
        import json

        annotated = self.annotate(frame, result)
        if self.src.is_video:
            if self.sink is None:
                h, w = frame.rgb.shape[:2]
                self.sink = VideoSink(self.video, self.src.fps or 25.0, (w, h))
            self.sink.write(annotated)
            line = {"frame": frame.index, "time_s": round(frame.time_s, 4), **self.to_json(result)}
            self._jsonl.write(json.dumps(line) + "\n")
            return
        from PIL import Image

        suffix = frame.path.suffix.lower()
        out_name = frame.path.name if suffix in (".jpg", ".jpeg", ".png") else frame.path.stem + ".png"
        Image.fromarray(annotated).save(self.out_dir / out_name, quality=92)
        if self.coco:
            self.records += self.coco(frame, result)
        else:
            line = {"file": str(frame.path), "image": frame.index, **self.to_json(result)}
            self._jsonl.write(json.dumps(line) + "\n")

    def close(self) -> None:
        import json

        if self._jsonl is not None:
            self._jsonl.close()
        else:
            self._tmp.write_text(json.dumps(self.records, indent=1))
        os.replace(self._tmp, self.predictions)
        if self.sink:
            self.sink.close()


def increment_dir(root: Path, name: str, exist_ok: bool = False) -> Path:
    """``root/name``, or ``name-2``, ``name-3``… when it exists (unless ``exist_ok``): the
    training engine's run-folder rule, for prediction runs (``runs/detect/predict-2``)."""
    from mbv1.run_dirs import new_run_dir

    root = Path(root)
    return new_run_dir(root.parent, root.name, name, exist_ok)


@dataclass
class StreamStats:
    """What :func:`run_stream` counted: frames, items found (boxes, faces), decode ms/frame,
    and the stream's wall-clock seconds (decoding, model and writing together)."""

    frames: int
    items: int
    decode_ms: float
    wall_s: float = 0.0


def run_stream(src: Source, process, writer=None, vid_stride: int = 1, progress=None,
               warn=None, pipelined: bool = True, prepare=None) -> StreamStats:
    """Stream frames of ``src`` through ``process(rgb) -> result`` (a sized result), handing
    each to ``writer.add(frame, result)`` and ``progress(frames, len(result))``; the writer is
    closed even when the stream fails. Shared by ``mbv1 detect`` and ``mbv1 faces``.

    ``pipelined``: decoding runs one frame ahead in a thread of its own and the writer (drawing,
    video encoding, JSON) one frame behind in another, so the model is not waiting on either
    (OpenCV releases the GIL while it decodes and encodes). Frames keep their order: one
    producer, one consumer, bounded queues. An error in either thread stops the stream and is
    raised here. ``prepare(rgb)``, when given, runs beside decoding (e.g. the detector's
    resize and normalisation) and ``process(rgb, prepared)`` gets its result."""
    import time

    t0 = time.perf_counter()
    if not pipelined:
        frames = items = 0
        decode_s = 0.0
        t = time.perf_counter()
        try:
            for frame in iter_frames(src, vid_stride, warn=warn):
                decode_s += time.perf_counter() - t
                result = process(frame.rgb) if prepare is None else \
                    process(frame.rgb, prepare(frame.rgb))
                frames, items = frames + 1, items + len(result)
                if writer:
                    writer.add(frame, result)
                if progress:
                    progress(frames, len(result))
                t = time.perf_counter()
        finally:
            if writer:
                writer.close()
        return StreamStats(frames, items, 1000 * decode_s / max(frames, 1),
                           time.perf_counter() - t0)
    stats = _run_pipelined(src, process, writer, vid_stride, progress, warn, prepare)
    stats.wall_s = time.perf_counter() - t0
    return stats


_END = object()


def _run_pipelined(src, process, writer, vid_stride, progress, warn, prepare) -> StreamStats:
    import queue
    import threading
    import time

    decoded: queue.Queue = queue.Queue(maxsize=2)
    to_write: queue.Queue = queue.Queue(maxsize=2)
    errors: list[BaseException] = []
    stop = threading.Event()
    decode_s = [0.0]

    def put(q, item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def decode() -> None:
        try:
            t = time.perf_counter()
            for frame in iter_frames(src, vid_stride, warn=warn):
                decode_s[0] += time.perf_counter() - t
                if prepare is not None:
                    frame.prepared = prepare(frame.rgb)
                if not put(decoded, frame):
                    return
                t = time.perf_counter()
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            errors.append(e)
        finally:
            put(decoded, _END)

    def write() -> None:
        try:
            while (item := to_write.get()) is not _END:
                writer.add(*item)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            errors.append(e)
            stop.set()

    reader = threading.Thread(target=decode, name="mbv1-decode", daemon=True)
    sink = threading.Thread(target=write, name="mbv1-write", daemon=True) if writer else None
    reader.start()
    if sink:
        sink.start()
    frames = items = 0
    try:
        while not stop.is_set():
            try:
                frame = decoded.get(timeout=0.1)
            except queue.Empty:
                if reader.is_alive():
                    continue
                break  # the decoder ended without its marker: the writer stopped the stream
            if frame is _END:
                break
            result = process(frame.rgb) if prepare is None else process(frame.rgb, frame.prepared)
            frames, items = frames + 1, items + len(result)
            if sink and not put(to_write, (frame, result)):
                break
            if progress:
                progress(frames, len(result))
    finally:
        while sink is not None and sink.is_alive():
            try:  # the writer drains what is queued, then ends
                to_write.put(_END, timeout=0.1)
                break
            except queue.Full:
                continue
        if sink:
            sink.join()
        stop.set()
        while reader.is_alive():  # unblock a decoder waiting on a full queue
            try:
                decoded.get_nowait()
            except queue.Empty:
                pass
            reader.join(timeout=0.05)
        if writer:
            writer.close()
    if errors:
        raise errors[0]
    return StreamStats(frames, items, 1000 * decode_s[0] / max(frames, 1))
