"""Faster R-CNN box coder with scales (10, 10, 5, 5), TF OD API conventions.

Anchors are ``(cy, cx, h, w)``; encodings are ``(ty, tx, th, tw)``:
``ty = 10·(y - y_a)/h_a``, ``tx = 10·(x - x_a)/w_a``, ``th = 5·log(h/h_a)``, ``tw = 5·log(w/w_a)``.
Boxes in and out are normalised ``xyxy``.
"""

from __future__ import annotations

import math

import torch

SCALES = (10.0, 10.0, 5.0, 5.0)
# exp() of more than this would overflow boxes; torchvision clamps the same way.
MAX_LOG_SCALE = math.log(1000.0 / 16)


def encode(boxes_xyxy: torch.Tensor, anchors: torch.Tensor,
           scales: tuple[float, ...] = SCALES) -> torch.Tensor:
    """``[..., 4]`` boxes (xyxy) against matching anchors (cy, cx, h, w) → ``[..., 4]`` codes."""
    ya, xa, ha, wa = anchors.unbind(-1)
    x0, y0, x1, y1 = boxes_xyxy.unbind(-1)
    eps = 1e-8
    h = (y1 - y0).clamp(min=eps)
    w = (x1 - x0).clamp(min=eps)
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    sy, sx, sh, sw = scales
    return torch.stack([sy * (cy - ya) / ha, sx * (cx - xa) / wa,
                        sh * torch.log(h / ha), sw * torch.log(w / wa)], dim=-1)


def decode(codes: torch.Tensor, anchors: torch.Tensor,
           scales: tuple[float, ...] = SCALES) -> torch.Tensor:
    """``[..., 4]`` codes (ty, tx, th, tw) + anchors (cy, cx, h, w) → boxes ``xyxy``."""
    ya, xa, ha, wa = anchors.unbind(-1)
    ty, tx, th, tw = codes.unbind(-1)
    sy, sx, sh, sw = scales
    cy = ty / sy * ha + ya
    cx = tx / sx * wa + xa
    h = torch.exp((th / sh).clamp(max=MAX_LOG_SCALE)) * ha
    w = torch.exp((tw / sw).clamp(max=MAX_LOG_SCALE)) * wa
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)
