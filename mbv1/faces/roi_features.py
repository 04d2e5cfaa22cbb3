"""RoI features of cached faces for the shared face model (:mod:`mbv1.faces.shared`), computed
once and kept beside the crops.

The detector is frozen, so what its body says about a face never changes: each face of a crop
cache gets its ``[C, P, P]`` RoI features cut from the body's tap map of its own frame at its
cached box, in :data:`VIEWS`: the frame as it is and mirrored (the flip augmentation, whose
teacher targets are cached too). Stored as one float16 array ``[N, 2, C, P, P]``
(``rois-<key>.npy``; ``key`` names the detector weights and the RoI settings), written to a
temporary name and renamed when complete. (Zoomed-out views, the frame 2x and 4x smaller in
the detector's input, were measured and trained worse: docs/faces.md.)
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mbv1.errors import MBV1Error

__all__ = ["VIEWS", "roi_features"]

# mirrored or not, per cached view; view 0 is the frame as it is (evaluation)
VIEWS = (0, 1)


def _key(model, pre) -> str:
    c = model.config
    return hashlib.sha1(json.dumps([c.detector, c.tap, c.roi_size, c.sampling_ratio,
                                    pre.to_dict()], sort_keys=True).encode()).hexdigest()[:12]


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
    ``pre``; axis 1: the :data:`VIEWS`. Cached at ``src.root``.

    Raises:
        MBV1Error: ``src`` has no frames (CelebA's aligned crops), or a frame cannot be read.
    """
    records = src.records
    if any(r.method == "celeba-aligned" for r in records[:1]):
        raise MBV1Error("the shared face model reads faces in their frames; CelebA's aligned "
                        "crops have none: use model.heads=separate for CelebA")
    c = model.config
    path = Path(src.root) / f"rois-{_key(model, pre)}.npy"
    shape = (len(records), len(VIEWS), model.roi_channels, c.roi_size, c.roi_size)
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
            h, w = rgb.shape[:2]
            s = pre.input_size
            boxes = torch.tensor([records[i].box_xyxy for i in ids], dtype=torch.float32)
            for v, flip in enumerate(VIEWS):
                b = boxes.clone()
                img = rgb
                if flip:
                    img = np.ascontiguousarray(rgb[:, ::-1])
                    b[:, [0, 2]] = w - boxes[:, [2, 0]]
                sx, sy = pre.frame_scale(h, w)
                b = (b * torch.tensor([s / sx, s / sy, s / sx, s / sy])).to(dev)
                x = pre(img, dev).contiguous(memory_format=torch.channels_last)
                feats = model.rois(model.tap_map(x), [b])
                out[ids, v] = feats.float().cpu().numpy().astype(np.float16)
            done += len(ids)
            if log and done % 200 < len(ids):
                log(f"faces: RoI features {done}/{len(records)}")
        out.flush()
        del out
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return np.load(path, mmap_mode="r")
