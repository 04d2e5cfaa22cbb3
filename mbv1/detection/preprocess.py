"""Frame → network input, exactly as the weights were trained.

The face model (TF, via face-api) zero-pads the image bottom/right to a square, resizes it with
TensorFlow's legacy bilinear (``align_corners=False, half_pixel_centers=False``: source
coordinate = ``dst · in/out``) and scales to ``x/127.5 − 1``. Models trained in mbv1 use a
plain resize with half-pixel centres (``torch.nn.functional.interpolate``), matching training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

PADS = ("bottom-right", "none")
RESIZES = ("tf-bilinear-legacy", "bilinear")


@dataclass(frozen=True)
class Preprocess:
    """How a model wants its input; stored in checkpoint meta."""

    input_size: int = 300
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)  # of pixel/255
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    pad: str = "none"
    resize: str = "bilinear"

    @classmethod
    def from_meta(cls, meta: dict, input_size: int | None = None) -> Preprocess:
        p = meta.get("preprocess", {})
        return cls(input_size or p.get("input_size", meta.get("input_size", 300)),
                   tuple(p.get("mean", meta.get("mean", (0.5,) * 3))),
                   tuple(p.get("std", meta.get("std", (0.5,) * 3))),
                   p.get("pad", "none"), p.get("resize", "bilinear"))

    def to_dict(self) -> dict:
        return {"input_size": self.input_size, "mean": list(self.mean), "std": list(self.std),
                "pad": self.pad, "resize": self.resize}

    def frame_scale(self, height: int, width: int) -> tuple[float, float]:
        """Pixels per normalised unit along (x, y): maps network boxes back to the frame."""
        if self.pad == "bottom-right":
            side = max(height, width)
            return float(side), float(side)
        return float(width), float(height)

    def __call__(self, rgb: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        """``uint8 [H, W, 3]`` RGB → ``float [1, 3, S, S]`` normalised network input."""
        if isinstance(rgb, np.ndarray):
            rgb = torch.from_numpy(np.array(rgb, copy=not rgb.flags.writeable, order="C"))
        x = rgb.to(device)
        x = x.permute(2, 0, 1)[None].float()  # [1, 3, H, W], 0..255
        s = self.input_size
        if self.resize == "tf-bilinear-legacy":
            x = resize_bilinear_legacy(x, s, s, pad_square=self.pad == "bottom-right")
        else:
            if self.pad == "bottom-right":
                h, w = x.shape[-2:]
                side = max(h, w)
                x = F.pad(x, (0, side - w, 0, side - h))
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=False)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1) * 255
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1) * 255
        return (x - mean) / std


def _legacy_index(out: int, in_padded: int, in_valid: int, device) -> tuple:
    """Source rows/cols of TF's legacy bilinear; positions past ``in_valid`` (the zero padding
    of a square) get zero weight."""
    src = torch.arange(out, device=device, dtype=torch.float32) * (in_padded / out)
    i0 = src.floor().long()
    i1 = torch.clamp(i0 + 1, max=in_padded - 1)
    frac = src - i0.float()
    m0 = (i0 < in_valid).float()
    m1 = (i1 < in_valid).float()
    return i0.clamp(max=in_valid - 1), i1.clamp(max=in_valid - 1), frac, m0, m1


def resize_bilinear_legacy(x: torch.Tensor, out_h: int, out_w: int, pad_square: bool = False) -> torch.Tensor:
    """TF ``resize_bilinear(align_corners=False, half_pixel_centers=False)`` of ``[N, C, H, W]``,
    optionally of the image zero-padded bottom/right to a square (without building the pad)."""
    h, w = x.shape[-2:]
    ph, pw = (max(h, w),) * 2 if pad_square else (h, w)
    y0, y1, fy, my0, my1 = _legacy_index(out_h, ph, h, x.device)
    x0, x1, fx, mx0, mx1 = _legacy_index(out_w, pw, w, x.device)
    top = x[..., y0, :] * my0[:, None]
    bottom = x[..., y1, :] * my1[:, None]
    rows = top + (bottom - top) * fy[:, None]
    left = rows[..., x0] * mx0
    right = rows[..., x1] * mx1
    return left + (right - left) * fx
