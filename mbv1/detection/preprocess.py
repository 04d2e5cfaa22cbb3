"""Frame → network input, exactly as the weights were trained.

The face model (TF, via face-api) zero-pads the image bottom/right to a square, resizes it with
TensorFlow's legacy bilinear (``align_corners=False, half_pixel_centers=False``: source
coordinate = ``dst · in/out``) and scales to ``x/127.5 − 1``. Models trained in mbv1 use a
plain resize with half-pixel centres (``torch.nn.functional.interpolate``), matching training.
"""

from __future__ import annotations

import functools
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
        rgb = rgb.to(device)
        s = self.input_size
        if self.resize == "tf-bilinear-legacy":
            # Gathered from the uint8 frame as it is (HWC), columns then rows as TF does:
            # only what the output needs is ever converted to float.
            square = self.pad == "bottom-right"
            x = _legacy_axis(rgb, 1, s, square, rgb.shape[0])
            x = _legacy_axis(x, 0, s, square, rgb.shape[1])
            x = x.permute(2, 0, 1)[None]  # NCHW view of channels-last memory
        else:
            x = rgb.permute(2, 0, 1)[None].float()  # [1, 3, H, W], 0..255
            if self.pad == "bottom-right":
                h, w = x.shape[-2:]
                side = max(h, w)
                x = F.pad(x, (0, side - w, 0, side - h))
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=False)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1) * 255
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1) * 255
        return (x - mean) / std


@functools.lru_cache(maxsize=64)
def _legacy_index_cpu(out: int, in_padded: int, in_valid: int) -> tuple:
    src = torch.arange(out, dtype=torch.float32) * (in_padded / out)
    i0 = src.floor().long()
    i1 = torch.clamp(i0 + 1, max=in_padded - 1)
    frac = src - i0.float()
    m0, m1 = (i0 < in_valid).float(), (i1 < in_valid).float()
    return (i0.clamp(max=in_valid - 1), i1.clamp(max=in_valid - 1), frac,
            None if bool(m0.all()) else m0, None if bool(m1.all()) else m1)


def _legacy_index(out: int, in_padded: int, in_valid: int, device) -> tuple:
    """Source rows/cols of TF's legacy bilinear; positions past ``in_valid`` (the zero padding
    of a square) get zero weight (``None``: no such position). Computed on the CPU once per
    geometry (no device sync to test the masks), then moved to ``device``."""
    return tuple(None if t is None else t.to(device)
                 for t in _legacy_index_cpu(out, in_padded, in_valid))


def _legacy_axis(x: torch.Tensor, axis: int, out: int, pad_square: bool = False,
                 other: int = 0) -> torch.Tensor:
    """TF's legacy bilinear along one axis of ``x`` (any dtype in, float32 out): ``a + (b − a)
    · frac`` exactly as TF computes it; with ``pad_square`` the axis is first zero-padded at its
    end to ``max(size, other)``, the size of the other spatial axis (without building the
    pad)."""
    n = x.shape[axis]
    padded = max(n, other) if pad_square else n
    i0, i1, frac, m0, m1 = _legacy_index(out, padded, n, x.device)
    shape = [1] * x.dim()
    shape[axis] = out
    a = x.index_select(axis, i0).float()
    b = x.index_select(axis, i1).float()
    if m0 is not None:
        a.mul_(m0.view(shape))
    if m1 is not None:
        b.mul_(m1.view(shape))
    return b.sub_(a).mul_(frac.view(shape)).add_(a)  # in place: no temporaries per step


def resize_bilinear_legacy(x: torch.Tensor, out_h: int, out_w: int, pad_square: bool = False) -> torch.Tensor:
    """TF ``resize_bilinear(align_corners=False, half_pixel_centers=False)`` of ``[N, C, H, W]``,
    optionally of the image zero-padded bottom/right to a square (without building the pad)."""
    h, w = x.shape[-2:]
    cols = _legacy_axis(x, x.dim() - 1, out_w, pad_square, h)  # x first, then y: TF's order
    return _legacy_axis(cols, x.dim() - 2, out_h, pad_square, w)
