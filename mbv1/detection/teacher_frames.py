"""A detector's outputs on unlabelled frames, cached once: what a distilled detector learns from.

Frames come from sources (:mod:`mbv1.datasets.sources`): every ``vid_stride``-th frame of a
video, a frame skipped when it is a near-duplicate of the last one kept (mean absolute
difference of 32x32 grey thumbnails below ``dedup``, in 0-255 levels), at most ``max_frames``
per source; every photo. Each kept frame is stored as JPEG (long side at most ``frame_size``)
with the teacher's detections down to ``keep_conf``: box (stored pixels), class, score and
every class's score at the anchor the box came from (the soft targets).

Layout of a cache (``root``; one per teacher and settings, sources of any folder share it)::

    <root>/meta.json                    teacher (file key, labels, ids) and the frame settings
    <root>/frames/<sid>/<frame>.jpg     kept frames (<frame>: decoded frame index, 6 digits)
    <root>/labels/<sid>.<r>of<w>.jsonl  one JSON line per kept frame of share r of w
    <root>/labels/<sid>.<r>of<w>.done   share complete: {"source", "frames"}

Under torchrun each rank labels its own share of every source's kept frames (the k-th kept
frame belongs to rank ``k % world``); a source is done when every share of one world size is.
An interrupted share resumes after its last whole line; a finished one is never labelled again.
Every file is written to a temporary name and renamed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mbv1.checkpoint import atomic_write
from mbv1.errors import MBV1Error

__all__ = ["FrameSettings", "TeacherFrames", "label_sources", "select_frames", "share_of",
           "split_span"]

VERSION = 1
THUMB = 32


@dataclass(frozen=True)
class FrameSettings:
    """Which frames are kept and how the teacher is read (part of the cache key)."""

    vid_stride: int = 5
    dedup: float = 2.0  # mean |Δ| of 32x32 grey thumbnails (0-255) under which a frame is skipped
    max_frames: int = 400  # per source (0: no limit)
    frame_size: int = 640  # long side of the stored JPEG (0: as decoded)
    keep_conf: float = 0.3  # teacher detections cached down to this score


def share_of(ordinal: int, rank: int, world: int) -> bool:
    """Whether the ``ordinal``-th kept frame of a source is rank ``rank``'s to label."""
    return ordinal % world == rank


def _thumb(rgb: np.ndarray) -> np.ndarray:
    import cv2

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)


def split_span(source: str) -> tuple[str, int, int | None]:
    """``"clip.avi@600:795"`` (frames 600 to 794 of a video as a source of its own: another
    stretch of the same camera) → ``("clip.avi", 600, 795)``; a plain path → ``(path, 0, None)``."""
    path, sep, span = str(source).rpartition("@")
    if sep and ":" in span and all(p.isdigit() or p == "" for p in span.split(":", 1)):
        a, b = span.split(":", 1)
        return path, int(a or 0), int(b) if b else None
    return str(source), 0, None


def select_frames(source: str, settings: FrameSettings, stride: int | None = None,
                  warn=None) -> Iterator[tuple[int, object]]:
    """``(ordinal, mbv1.media.Frame)`` of the frames kept from ``source`` (a path, or a video
    stretch ``path@start:stop``), the same on every rank (every ``stride``-th video frame,
    default ``settings.vid_stride``; near-duplicate skip; cap)."""
    from mbv1.media import iter_frames, resolve_source

    path, start, stop = split_span(source)
    src = resolve_source(path)
    last = None
    kept = 0
    step = (stride or settings.vid_stride) if src.is_video else 1
    for frame in iter_frames(src, step, warn=warn):
        if frame.index < start:
            continue
        if stop is not None and frame.index >= stop:
            return
        thumb = _thumb(frame.rgb)
        if last is not None and settings.dedup > 0 and \
                float(np.abs(thumb - last).mean()) < settings.dedup:
            continue
        last = thumb
        yield kept, frame
        kept += 1
        if settings.max_frames and kept >= settings.max_frames:
            return


def source_id(source: str, stride: int) -> str:
    """A folder-safe, stable id of a source read with a video stride: its name and a hash of its
    resolved path, size, modification time and the stride (a changed file is labelled again)."""
    path, start, stop = split_span(source)
    p = Path(path)
    span = f"@{start}:{'' if stop is None else stop}" if (start or stop is not None) else ""
    try:
        st = p.stat()
        ident = f"{p.resolve()}:{st.st_size}:{int(st.st_mtime)}:{stride}{span}"
    except OSError:
        ident = f"{source}:{stride}"
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in p.name + span)[:40] or "source"
    return f"{stem}-{hashlib.sha1(ident.encode()).hexdigest()[:8]}"


def _read_lines(path: Path) -> list[dict]:
    """The whole JSON lines of a share file (a torn last line is dropped)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            break
    return out


class TeacherFrames:
    """A frame cache: read its records, label missing sources (see the module docstring)."""

    def __init__(self, root: str | Path, teacher: dict, settings: FrameSettings):
        self.root = Path(root)
        self.teacher, self.settings = teacher, settings
        meta = {"format": "mbv1-teacher-frames", "version": VERSION, "teacher": teacher,
                "settings": asdict(settings)}
        path = self.root / "meta.json"
        if path.exists():
            try:
                old = json.loads(path.read_text())
            except ValueError:
                old = None
            if old != meta:
                raise MBV1Error(f"{self.root} holds another teacher's frames or other settings; "
                                "delete it or use another distill.cache")
        else:
            (self.root / "labels").mkdir(parents=True, exist_ok=True)
            atomic_write(path, json.dumps(meta, indent=1))
        self.meta = meta

    def _share_path(self, sid: str, rank: int, world: int, ext: str) -> Path:
        return self.root / "labels" / f"{sid}.{rank}of{world}.{ext}"

    def done_world(self, source: str, stride: int | None = None) -> int | None:
        """The world size of a complete set of shares of ``source``, or None."""
        sid = source_id(source, stride or self.settings.vid_stride)
        for done in sorted((self.root / "labels").glob(f"{sid}.0of*.done")):
            world = int(done.name.rsplit("of", 1)[1].split(".")[0])
            if all(self._share_path(sid, r, world, "done").exists() for r in range(world)):
                return world
        return None

    def records(self, source: str, stride: int | None = None) -> list[dict]:
        """The labelled frames of a done source, in frame order (``[]`` if not done)."""
        world = self.done_world(source, stride)
        if world is None:
            return []
        sid = source_id(source, stride or self.settings.vid_stride)
        recs = [r for k in range(world) for r in _read_lines(self._share_path(sid, k, world, "jsonl"))]
        return sorted(recs, key=lambda r: r["frame"])

    def label(self, source: str, detect: Callable, rank: int = 0, world: int = 1,
              stride: int | None = None, warn=None) -> int:
        """Label rank ``rank``'s share of ``source`` with ``detect(rgb) -> Detections`` (with
        class scores); returns the frames labelled now (0 when the share was already done)."""
        sid = source_id(source, stride or self.settings.vid_stride)
        done = self._share_path(sid, rank, world, "done")
        if done.exists() or self.done_world(source, stride) is not None:
            return 0
        part = self._share_path(sid, rank, world, "jsonl")
        have = _read_lines(part)
        atomic_write(part, "".join(json.dumps(r) + "\n" for r in have))  # drop a torn line
        seen = {r["frame"] for r in have}
        folder = self.root / "frames" / sid
        folder.mkdir(parents=True, exist_ok=True)
        n = 0
        with open(part, "a") as out:
            for ordinal, frame in select_frames(source, self.settings, stride, warn):
                if not share_of(ordinal, rank, world) or frame.index in seen:
                    continue
                rec = self._label_frame(frame, detect, folder, sid, source)
                out.write(json.dumps(rec) + "\n")
                out.flush()
                n += 1
        atomic_write(done, json.dumps({"source": str(source), "frames": len(have) + n}))
        return n

    def _label_frame(self, frame, detect, folder: Path, sid: str, source: str) -> dict:
        import cv2

        rgb = frame.rgb
        h, w = rgb.shape[:2]
        scale = min(1.0, self.settings.frame_size / max(h, w)) if self.settings.frame_size else 1.0
        stored = rgb if scale == 1.0 else cv2.resize(
            rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        name = f"{frame.index:06d}.jpg"
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(stored, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise MBV1Error(f"cannot encode frame {frame.index} of {source} as JPEG")
        atomic_write(folder / name, buf.tobytes())
        dets = detect(rgb)
        sh, sw = stored.shape[:2]
        sx, sy = sw / w, sh / h
        boxes = [[round(float(b[0]) * sx, 2), round(float(b[1]) * sy, 2),
                  round(float(b[2]) * sx, 2), round(float(b[3]) * sy, 2)] for b in dets.boxes_xyxy]
        soft = [{str(c): round(float(row[c]), 4) for c in np.flatnonzero(row >= 0.005)}
                for row in dets.class_scores]
        return {"source": str(source), "frame": int(frame.index),
                "time_s": None if frame.time_s is None else round(frame.time_s, 4),
                "path": frame.path.name if frame.path else None,
                "file": f"frames/{sid}/{name}", "width": sw, "height": sh,
                "boxes": boxes, "labels": [int(v) for v in dets.labels],
                "scores": [round(float(v), 4) for v in dets.scores], "class_scores": soft}


def label_sources(frames: TeacherFrames, sources: list[tuple[str, int | None]], detect: Callable,
                  rank: int = 0, world: int = 1, log=print, warn=None) -> None:
    """Label this rank's share of every ``(source, video stride)`` (done ones are skipped)."""
    todo = [(s, k) for s, k in sources if frames.done_world(s, k) is None]
    if not todo:
        return
    if rank == 0:
        log(f"distill: the teacher labels {len(todo)} of {len(sources)} sources into {frames.root}"
            + (f" ({world} ranks, each its share)" if world > 1 else ""))
    total = 0
    for i, (s, k) in enumerate(todo, 1):
        n = frames.label(s, detect, rank, world, k, warn)
        total += n
        if rank == 0 and (n > 1 or i == len(todo)):
            log(f"  [{i}/{len(todo)}] {Path(s).name}: {n} frames labelled ({total} so far)")
