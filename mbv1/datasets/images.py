"""Reading images the way every mbv1 task needs them: RGB, upright, or a clear error.

``load_rgb`` accepts any mode PIL decodes (grayscale, 16-bit, 32-bit, float, palette with or
without transparency, RGBA, LA, CMYK, YCbCr, 1-bit) and returns an 8-bit RGB image with the
EXIF orientation applied. Transparent pixels are composited onto white (their stored colour
is arbitrary). 16-bit images are scaled (x/257), not clipped as ``Image.convert`` does.
Multi-frame files (GIF, TIFF) give their first frame.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

from mbv1.errors import MBV1Error

if TYPE_CHECKING:
    import torch

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                              ".ppm", ".pgm", ".pbm", ".jfif"})
_HIGH_DEPTH = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def is_image_file(path: str | os.PathLike) -> bool:
    """True for a name with an image extension (case-insensitive: ``.JPEG`` counts)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode ``path`` into an upright 8-bit RGB image.

    Raises:
        MBV1Error: naming the path, when the file is missing, empty, truncated, not an image or
            in a mode that has no RGB meaning.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()  # decode now, so a truncated file fails here, naming its path
                img = ImageOps.exif_transpose(img) or img
                return to_rgb(img)
    except FileNotFoundError:
        raise MBV1Error(f"image not found: {path}") from None
    except MBV1Error:
        raise
    except Exception as e:  # noqa: BLE001  PIL raises many types for bad files: one line
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if path.exists() and path.stat().st_size == 0:
            reason = "empty file (0 bytes)"
        raise MBV1Error(f"cannot read image {path}: {reason[:160]}") from None


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB (see the module docstring for the rules)."""
    mode = img.mode
    if mode == "RGB":
        return img.copy()  # detached from the file, which the caller closes
    if mode in _HIGH_DEPTH:
        return Image.fromarray(_to_uint8(np.asarray(img), mode), "L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    try:
        return img.convert("RGB")
    except (ValueError, OSError) as e:
        raise MBV1Error(f"image mode {mode!r} has no RGB conversion ({e})") from None


def _to_uint8(a: np.ndarray, mode: str) -> np.ndarray:
    """16/32-bit integer or float grayscale -> 8 bit, keeping the full range visible."""
    a = a.astype(np.float64)
    if mode.startswith("I;16"):
        a = a / 257.0
    elif mode == "I":
        # 32-bit ints: PNG 16-bit grayscale often decodes as mode I with values up to 65535.
        top = a.max(initial=0)
        a = a / 257.0 if top > 255 else a
    elif mode == "F":
        a = a * 255.0 if a.max(initial=0) <= 1.0 else a
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def image_batches(paths, transform, mean, std, batch_size: int = 32):
    """Images of ``paths`` as network batches, for prediction over many files.

    Yields ``(items, x)`` per chunk of ``batch_size`` paths: ``items`` a list of ``(path, row,
    error)`` in order — ``row`` the image's row in ``x`` (``None`` with a one-line ``error`` for
    an unreadable file, which does not stop the others) — and ``x`` the stacked
    ``float [B, 3, S, S]`` of the readable images (``transform`` on the uint8 RGB array, then
    :func:`mbv1.datasets.augment.to_tensor`), or ``None`` when none were.
    """
    import torch

    from mbv1.datasets.augment import to_tensor
    from mbv1.errors import MBV1Error

    for start in range(0, len(paths), batch_size):
        items, tensors = [], []
        for p in paths[start:start + batch_size]:
            try:
                img = np.asarray(load_rgb(p))
            except MBV1Error as e:
                items.append((p, None, str(e)))
                continue
            items.append((p, len(tensors), None))
            tensors.append(to_tensor(transform(img), mean, std))
        yield items, (torch.stack(tensors) if tensors else None)


def crop_to_tensor(crop: np.ndarray, resolution: int, mean, std, flip: bool = False) -> torch.Tensor:
    """A canonical crop ``uint8 [S, S, 3]`` → the student's input ``float [3, R, R]``:
    optional mirror, resize (area when shrinking, bilinear otherwise), ``(x/255 − mean)/std``."""
    import cv2
    import torch

    a = np.asarray(crop)
    if flip:
        a = a[:, ::-1]
    if a.shape[0] != resolution or a.shape[1] != resolution:
        interp = cv2.INTER_AREA if a.shape[0] > resolution else cv2.INTER_LINEAR
        a = cv2.resize(np.ascontiguousarray(a), (resolution, resolution), interpolation=interp)
    x = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (x - m) / s
