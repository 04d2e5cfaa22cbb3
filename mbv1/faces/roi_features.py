"""RoI features of cached faces for the shared face model (:mod:`mbv1.faces.shared`), computed
once and kept beside the crops.

The detector is frozen, so what its body says about a face never changes: each face of a crop
cache gets its ``[C, P, P]`` RoI features cut from the body's tap map of its own frame at its
cached box, in the :func:`views` of ``shared.train_sizes``: the frame as it is and mirrored
(the flip augmentation, whose teacher targets are cached too), then for each size N the frame
shrunk so that the face's longest side is about N pixels of the detector's input (log-uniform
within a factor √2 of N, drawn once per face; the rest of the frame's place filled by its
mirror images), as it is and mirrored. A face at most that size already keeps its own.
``shared.jitter_copies`` more copies of every view cut the same map at the box moved and
resized at random (:func:`jittered`). The
teacher targets stay those of the full-resolution face: the heads learn the teacher's answer
from the detector's view of a small face, the size most faces have in a street or a crowd
(the embedded held-out faces: median 30 px in the 512 px input, the training faces 214 px).
Stored as one float16 array ``[N, V, C, P, P]`` (``rois-<key>.npy``; ``key`` names the
detector weights, the RoI settings and the views), written to a temporary name and renamed
when complete.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import zlib
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mbv1.errors import MBV1Error

__all__ = ["jittered", "roi_features", "shrunk", "views"]


def views(train_sizes) -> list[tuple[int, int | None]]:
    """``(mirrored, face size in input pixels or None: its own)`` of each cached view; view 0
    is the frame as it is (evaluation), odd views are mirrored."""
    return [(f, s) for s in (None, *train_sizes) for f in (0, 1)]


def _key(model, pre) -> str:
    c = model.config
    parts = [c.detector, c.tap, c.roi_size, c.sampling_ratio, pre.to_dict()]
    # caches made before these settings existed keep their names
    if c.train_sizes:
        parts.append(list(c.train_sizes))
    if c.roi_margin:
        parts.append({"roi_margin": c.roi_margin})
    if c.jitter_copies:
        parts.append({"jitter": [c.jitter_copies, c.box_jitter]})
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


def _side(face_id: str, size: int) -> float:
    """The face's longest side in a shrunk view of ``size``: log-uniform in
    ``[size/√2, size·√2]``, the same for a face every time."""
    rng = np.random.default_rng(zlib.crc32(f"{face_id}:{size}".encode()))
    return size * 2 ** rng.uniform(-0.5, 0.5)


def jittered(boxes: torch.Tensor, face_ids: list[str], view: int, copy_: int,
             amount: float) -> torch.Tensor:
    """``boxes [K, 4]`` (xyxy) each moved by up to ``amount`` of its width / height and resized
    by a factor in ``[1 - amount, 1 + amount]`` about its centre; the same for a face, view
    and copy every time."""
    d = torch.tensor(np.stack([
        np.random.default_rng(zlib.crc32(f"{fid}:{view}:{copy_}".encode())).uniform(-amount, amount, 3)
        for fid in face_ids]), dtype=boxes.dtype)
    wh = boxes[:, 2:] - boxes[:, :2]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2 + d[:, :2] * wh
    half = wh * (1 + d[:, 2:]) / 2
    return torch.cat([centre - half, centre + half], 1)


def shrunk(rgb: np.ndarray, box, k: float) -> tuple[np.ndarray, list[float]]:
    """``(frame, box)``: ``rgb`` shrunk ``k`` times (area resampling) on a canvas of its own
    size, placed to keep the box's centre where it was as far as it fits, the rest of the
    canvas its mirror images; ``box`` (xyxy frame pixels) where it lands."""
    import cv2

    h, w = rgb.shape[:2]
    sw, sh = max(2, round(w * k)), max(2, round(h * k))
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    kx, ky = sw / w, sh / h
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    ox = int(round(min(max(cx - cx * kx, 0), w - sw)))
    oy = int(round(min(max(cy - cy * ky, 0), h - sh)))
    canvas = np.pad(small, ((oy, h - sh - oy), (ox, w - sw - ox), (0, 0)), mode="reflect")
    return canvas, [box[0] * kx + ox, box[1] * ky + oy, box[2] * kx + ox, box[3] * ky + oy]


def _frames(records: list, indices: list[int], warn=None):
    """``(rgb frame, [record indices])`` for the frames of ``indices`` (photos are read again;
    videos decoded once, up to the last frame needed)."""
    from mbv1.datasets.images import load_rgb
    from mbv1.media import iter_frames, resolve_source

    by_file: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i in indices:
        r = records[i]
        by_file[r.file][int(r.frame)].append(i)
    for file, frames in by_file.items():
        video = any(records[i].time_s is not None for ids in frames.values() for i in ids)
        if not video:
            rgb = np.asarray(load_rgb(Path(file)))
            for ids in frames.values():
                yield rgb, ids
            continue
        src = resolve_source(file)
        last, seen = max(frames), set()
        for frame in iter_frames(src, 1, warn=warn):
            if frame.index in frames:
                seen.add(frame.index)
                yield frame.rgb, frames[frame.index]
            if frame.index >= last:
                break
        missing = sorted(set(frames) - seen)
        if missing:
            raise MBV1Error(f"{file}: frame {missing[0]} of the face cache is not in the video "
                            "any more (the file changed?); delete the face cache and train again")


@torch.inference_mode()
def roi_features(src, model, pre, device: str = "cpu",
                 log: Callable[[str], None] | None = None) -> np.ndarray:
    """``float16 [N, V, C, P, P]`` RoI features of every face of ``src`` (a crop cache, or two
    joined) for :class:`~mbv1.faces.shared.SharedFaceModel` ``model`` with preprocessing
    ``pre``; axis 1: the :func:`views` of ``model.config.train_sizes``, then
    ``jitter_copies`` more rounds of them at jittered boxes. Cached at ``src.root``.

    Raises:
        MBV1Error: ``src`` has no frames (CelebA's aligned crops), or a frame cannot be read.
    """
    records = src.records
    if any(r.method == "celeba-aligned" for r in records[:1]):
        raise MBV1Error("the shared face model reads faces in their frames; CelebA's aligned "
                        "crops have none: use model.heads=separate for CelebA")
    c = model.config
    path = Path(src.root) / f"rois-{_key(model, pre)}.npy"
    vs = views(c.train_sizes)
    rounds = 1 + c.jitter_copies
    shape = (len(records), len(vs) * rounds, model.roi_channels, c.roi_size, c.roi_size)
    if path.exists():
        arr = np.load(path, mmap_mode="r")
        if arr.shape == shape:
            return arr
    if log:
        log(f"faces: RoI features of {len(records)} faces from the detector's {c.tap} "
            f"(cached in {path.name})")
    tmp = path.with_name(f".{path.name}.tmp")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=shape)
    dev = torch.device(device)
    from mbv1.backbone import fuse_bn

    # BatchNorm folded into the convolutions of a copy (the same numbers, fewer operations)
    model = fuse_bn(copy.deepcopy(model)).to(dev)
    try:
        done = 0
        for rgb, ids in _frames(records, list(range(len(records)))):
            recs = [records[i] for i in ids]
            both = (rgb, np.ascontiguousarray(rgb[:, ::-1]))  # as it is, mirrored
            for v, (flip, size) in enumerate(vs):
                for faces, frame, boxes in _view(both[flip], recs, flip, size, pre):
                    rows = [ids[f] for f in faces]
                    if frame is None:  # no smaller than the view's size: its own view
                        for r in range(rounds):
                            out[rows, r * len(vs) + v] = out[rows, r * len(vs) + flip]
                        continue
                    x = pre(frame, dev).contiguous(memory_format=torch.channels_last)
                    fmap = model.tap_map(x)
                    face_ids = [records[i].id for i in rows]
                    for r in range(rounds):
                        b = boxes if r == 0 else jittered(boxes, face_ids, v, r, c.box_jitter)
                        out[rows, r * len(vs) + v] = model.rois(fmap, [b.to(dev)]).float().cpu().numpy()
            done += len(ids)
            if log and done % 200 < len(ids):
                log(f"faces: RoI features {done}/{len(records)}")
        out.flush()
        del out
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return np.load(path, mmap_mode="r")


def _view(rgb: np.ndarray, recs: list, flip: int, size: int | None, pre):
    """``(faces of recs, frame, their boxes in input pixels [K, 4])`` of one view of a frame
    (``rgb`` already mirrored when ``flip``): the frame itself for all its faces, or for a
    shrunk view one frame per face larger than ``size`` and ``(faces, None, None)`` for those
    no larger (they keep their own view's features)."""
    h, w = rgb.shape[:2]
    s = pre.input_size
    sx, sy = pre.frame_scale(h, w)
    to_input = torch.tensor([s / sx, s / sy, s / sx, s / sy])
    boxes = [list(r.box_xyxy) for r in recs]
    if flip:
        boxes = [[w - b[2], b[1], w - b[0], b[3]] for b in boxes]
    if size is None:
        yield list(range(len(recs))), rgb, torch.tensor(boxes, dtype=torch.float32) * to_input
        return
    own = []
    for f, (r, b) in enumerate(zip(recs, boxes)):
        natural = max((b[2] - b[0]) * s / sx, (b[3] - b[1]) * s / sy)
        side = _side(r.id, size)
        if natural <= side:
            own.append(f)
            continue
        frame, box = shrunk(rgb, b, side / natural)
        yield [f], frame, torch.tensor([box], dtype=torch.float32) * to_input
    if own:
        yield own, None, None
