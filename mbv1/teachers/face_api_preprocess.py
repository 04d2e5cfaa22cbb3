"""face-api's input path for its attribute nets, bit-exact: its crop of a detection box, the
centred pad to a square and TensorFlow's legacy bilinear resize to 112 px, computed in float64
as tfjs does; and the box scale between a frame and the detector's 512 px input."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from mbv1.errors import MBV1Error

INPUT_SIZE = 112


def face_api_crop_box(box_xyxy: Sequence[float], width: int, height: int) -> tuple[int, int, int, int] | None:
    """face-api's ``Box.clipAtImageBorders`` + ``floor``: ``(x, y, w, h)`` integers of the crop
    for a float ``(x0, y0, x1, y1)`` pixel box, or None when nothing of it is inside the image.

    x' = max(x0, 0), y' = max(y0, 0), w' = min(x1 − x', W − x'), h' = min(y1 − y', H − y');
    each of x', y', w', h' is floored separately (so the crop can lose up to a pixel on the far
    side against rounding the corners)."""
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    cx, cy = max(x0, 0.0), max(y0, 0.0)
    w = min(x1 - cx, width - cx)
    h = min(y1 - cy, height - cy)
    x, y, w, h = math.floor(cx), math.floor(cy), math.floor(w), math.floor(h)
    if w <= 0 or h <= 0:
        return None
    return x, y, w, h


def crop_faces(rgb: np.ndarray, boxes_xyxy) -> list[np.ndarray | None]:
    """face-api's face crops (``extractFaceTensors``) of ``uint8 [H, W, 3]`` for pixel boxes."""
    h, w = rgb.shape[:2]
    out = []
    for b in np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4):
        c = face_api_crop_box(b, w, h)
        out.append(None if c is None else rgb[c[1]:c[1] + c[3], c[0]:c[0] + c[2]])
    return out


def pad_to_square_centred(x: torch.Tensor) -> torch.Tensor:
    """face-api ``padToSquare(x, isCenterImage=true)`` of ``[N, C, H, W]``: zeros on the shorter
    side, ``round(diff / 2)`` (JS Math.round: .5 up) after and ``diff − that`` before."""
    h, w = x.shape[-2:]
    if h == w:
        return x
    diff = abs(h - w)
    after = math.floor(diff * 0.5 + 0.5)
    before = diff - after
    if h > w:
        return F.pad(x, (before, after, 0, 0))
    return F.pad(x, (0, 0, before, after))


def _legacy_lerp_index(out: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    src = np.arange(out, dtype=np.float64) * (size / out)  # no half-pixel offset (TF1 legacy)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(np.ceil(src).astype(np.int64), size - 1)
    return i0, i1, src - i0


def resize_bilinear_legacy_f64(x: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """TF ``resizeBilinear(alignCorners=false, halfPixelCenters=false)`` of ``[N, C, H, W]``
    computed in float64 like tfjs's CPU kernel (JS numbers), returned as float32.

    For output row r: ``src = r·H/out_h``, ``y0 = floor(src)``, ``y1 = min(ceil(src), H − 1)``;
    ``top = tl + (tr − tl)·fx``, ``bottom = bl + (br − bl)·fx``, ``out = top + (bottom − top)·fy``.
    (:func:`mbv1.detection.preprocess.resize_bilinear_legacy` is the same in float32, with the
    SSD's bottom-right padding folded in; this float64 one matches face-api's 112x112 input to
    ~1e-5 grey levels instead of ~5e-4.)"""
    h, w = x.shape[-2:]
    y0, y1, fy = (torch.from_numpy(a) for a in _legacy_lerp_index(out_h, h))
    x0, x1, fx = (torch.from_numpy(a) for a in _legacy_lerp_index(out_w, w))
    d = x.double()
    fx = fx.to(d.device)
    top_l, top_r = d[..., y0, :][..., x0], d[..., y0, :][..., x1]
    bot_l, bot_r = d[..., y1, :][..., x0], d[..., y1, :][..., x1]
    top = top_l + (top_r - top_l) * fx
    bottom = bot_l + (bot_r - bot_l) * fx
    return (top + (bottom - top) * fy.to(d.device)[:, None]).float()


def preprocess_crops(crops: Sequence[np.ndarray] | np.ndarray, size: int = INPUT_SIZE) -> torch.Tensor:
    """Face crops (uint8 HxWx3 RGB each) → ``float32 [N, 3, size, size]``, 0..255: centred
    zero pad to a square (:func:`pad_to_square_centred`), then TF's legacy bilinear resize
    (:func:`resize_bilinear_legacy_f64`; skipped when already ``size``), as face-api's
    ``toBatchTensor(size, isCenterInputs=true)``."""
    if isinstance(crops, np.ndarray) and crops.ndim == 3:
        crops = [crops]
    out = []
    for i, c in enumerate(crops):
        a = np.asarray(c)
        if a.ndim != 3 or a.shape[2] != 3 or a.shape[0] == 0 or a.shape[1] == 0:
            raise MBV1Error(f"face crop {i} has shape {a.shape}: expected a non-empty HxWx3 RGB image")
        t = torch.from_numpy(np.array(a, dtype=np.float32)).permute(2, 0, 1)[None]
        t = pad_to_square_centred(t)
        if t.shape[-1] != size:
            t = resize_bilinear_legacy_f64(t, size, size)
        out.append(t[0])
    if not out:
        return torch.zeros(0, 3, size, size)
    return torch.stack(out)


def face_api_box_scale(height: int, width: int, input_size: int = 512) -> tuple[float, float]:
    """``(sx, sy)`` that turn mbv1's SSD boxes (exact un-padding: normalised · max(H, W)) into
    face-api's pixel boxes, which un-pad with *rounded* reshaped sizes
    (``computeReshapedDimensions``: ``padX = S/round(W·S_in/S)``…, ``ssdMobilenetv1``'s
    ``outputLayer``): on the short side face-api's boxes are up to ~0.1% larger. Multiply x by
    ``sx`` and y by ``sy`` to get face-api's exact crop (:func:`face_api_crop_box`)."""
    side = max(height, width)
    rw, rh = round(width * input_size / side), round(height * input_size / side)
    return (input_size / rw) * width / side, (input_size / rh) * height / side
