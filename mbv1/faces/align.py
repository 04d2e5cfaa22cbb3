"""Face crops: 5-point similarity alignment and the box-with-margin fallback.

Two crop policies produce mbv1's canonical face crop (default 160x160, FaceNet's input size):

* ``aligned``: the five landmarks (left eye, right eye, nose tip, left and right mouth corners,
  as MTCNN returns them, "left" = image left) are mapped onto :func:`template` by the
  least-squares similarity transform (rotation, uniform scale, translation; Umeyama 1991, no
  reflection), and the frame is warped with it. The template is the widely used 5-point
  ArcFace/InsightFace template of the 112x112 crop, scaled by 128/112 and shifted by 16 px, so
  that the face fills the central 128 px of 160 like FaceNet's "MTCNN box + 32 px margin at
  160" crops (davidsandberg/facenet's LFW protocol; facenet-pytorch's default ``margin``).
* ``box``: the detection box plus a margin of ``margin`` output pixels (facenet-pytorch's
  ``extract_face`` convention: the box grows by ``margin·w/(size − margin)`` horizontally and
  likewise vertically), resized to ``size x size`` (non-uniformly, as FaceNet's own crops).
  This is also the fallback when no landmarks are found.

Both are one affine warp (OpenCV ``warpAffine``, bilinear); pixels outside the frame are black.
The crop policy moves verification accuracy by points (``mbv1.paper.QUIRKS["lfw_crop"]``):
always report it beside a number.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mbv1.errors import MBV1Error

__all__ = [
    "ARCFACE_112",
    "CROP_POLICIES",
    "box_affine",
    "crop",
    "similarity_transform",
    "template",
]

CROP_POLICIES = ("aligned", "box")
# InsightFace/ArcFace 5-point template in a 112x112 crop: eyes, nose tip, mouth corners (x, y).
ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)
DEFAULT_SIZE = 160
DEFAULT_MARGIN = 32


def template(size: int = DEFAULT_SIZE, margin: int = DEFAULT_MARGIN) -> np.ndarray:
    """The 5-point target ``[5, 2]`` (x, y pixels) of an aligned ``size`` crop: ArcFace's
    112 template scaled to fill ``size − margin`` pixels, centred (``margin/2`` on each side)."""
    inner = size - margin
    if inner <= 0:
        raise MBV1Error(f"face crop margin {margin} must be smaller than the crop size {size}")
    return ARCFACE_112 * (inner / 112.0) + margin / 2.0


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity ``[2, 3]`` mapping points ``src [K, 2]`` onto ``dst [K, 2]``
    (Umeyama 1991: rotation, one scale, translation; a reflection is never returned)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise MBV1Error(f"similarity_transform needs two [K>=2, 2] point sets, got {src.shape} "
                        f"and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s**2).sum() / len(src)
    if var_s <= 1e-12:
        raise MBV1Error("similarity_transform: the source points coincide")
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[1, 1] = -1
    r = u @ e @ vt
    scale = (sig * np.diag(e)).sum() / var_s
    t = mu_d - scale * r @ mu_s
    return np.hstack([scale * r, t[:, None]])


def box_affine(box_xyxy: Sequence[float], size: int = DEFAULT_SIZE,
               margin: int = DEFAULT_MARGIN) -> np.ndarray:
    """``[2, 3]`` affine taking a box plus facenet-pytorch's margin onto a ``size`` square."""
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    w, h = max(x1 - x0, 1e-6), max(y1 - y0, 1e-6)
    if not 0 <= margin < size:
        raise MBV1Error(f"face crop margin {margin} must be in [0, {size})")
    mx, my = margin * w / (size - margin), margin * h / (size - margin)
    bx0, by0 = x0 - mx / 2, y0 - my / 2
    sx, sy = size / (w + mx), size / (h + my)
    return np.array([[sx, 0.0, -bx0 * sx], [0.0, sy, -by0 * sy]])


def crop(rgb: np.ndarray, box_xyxy: Sequence[float], landmarks: np.ndarray | None = None,
         policy: str = "aligned", size: int = DEFAULT_SIZE,
         margin: int = DEFAULT_MARGIN) -> tuple[np.ndarray, np.ndarray, str]:
    """One face crop of a ``uint8 [H, W, 3]`` frame.

    Returns ``(crop uint8 [size, size, 3], affine [2, 3] frame→crop, method)`` where ``method``
    is ``"aligned"`` or ``"box"`` (``aligned`` asked for but no landmarks given falls back to
    ``box``).
    """
    import cv2

    if policy not in CROP_POLICIES:
        raise MBV1Error(f"unknown crop policy {policy!r}: use one of {', '.join(CROP_POLICIES)}")
    if policy == "aligned" and landmarks is not None:
        m = similarity_transform(np.asarray(landmarks, np.float64).reshape(5, 2),
                                 template(size, margin))
        method = "aligned"
    else:
        m = box_affine(box_xyxy, size, margin)
        method = "box"
    out = cv2.warpAffine(np.ascontiguousarray(rgb), m, (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return out, m, method
