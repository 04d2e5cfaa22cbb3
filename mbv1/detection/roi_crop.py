"""The second stage's RoI crop: ``torchvision.ops.roi_align`` (``aligned=False``, a fixed
``sampling_ratio``) computed as two small matrix products per image.

Same numbers as ``roi_align`` (tests/test_faster_rcnn.py checks values and gradients on hand
boxes) with a fast backward on the CPU: torchvision's CPU ``roi_align`` backward took 62 % of a
training step here (350 ms of 565 for 4 images; ``grid_sample``'s took 270 ms), matrix products
a few ms. Sampling follows roi_align exactly: a box ``x1..x2`` (input pixels) becomes
``x1·s..x2·s`` on the feature map (``s`` = spatial scale, 1/16 for conv11), at least 1 cell
wide; each of the ``P x P`` bins is the mean of ``r x r`` bilinear samples at the bin's
sub-cell centres; a sample below -1 or past the map's size counts 0, one in [-1, 0] or past the
last cell takes the edge value. Bilinear sampling and the bin mean are separable, so a crop is
``By · F · Bxᵀ`` with ``By [P, H]`` and ``Bx [P, W]`` holding the interpolation weights.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.poolers import _filter_input, _setup_scales


def _weights(start: Tensor, end: Tensor, scale: float, bins: int, ratio: int, size: int) -> Tensor:
    """``[K, bins, size]``: each bin's mean bilinear weights over the map cells along one axis
    (roi_align's sample positions, clamping and out-of-range rule)."""
    lo = start * scale
    length = (end * scale - lo).clamp(min=1.0)
    steps = (torch.arange(bins * ratio, device=start.device, dtype=start.dtype) + 0.5) / ratio
    pos = lo[:, None] + steps[None, :] * (length / bins)[:, None]  # [K, S]
    keep = ((pos >= -1.0) & (pos <= size)).to(pos.dtype)
    pos = pos.clamp(0.0, size - 1.0)
    low = pos.floor().long().clamp(max=size - 1)
    high = (low + 1).clamp(max=size - 1)
    frac = pos - low.to(pos.dtype)
    w = pos.new_zeros(*pos.shape, size)
    w.scatter_add_(2, low[..., None], ((1.0 - frac) * keep)[..., None])
    w.scatter_add_(2, high[..., None], (frac * keep)[..., None])
    return w.reshape(len(pos), bins, ratio, size).mean(2)


def roi_crop(features: Tensor, boxes: list[Tensor], output_size: int, spatial_scale: float,
             sampling_ratio: int) -> Tensor:
    """``[R, C, P, P]`` crops of ``features [N, C, H, W]`` for per-image ``boxes [K_i, 4]``
    (xyxy, input pixels), R = sum K_i, in image order (``roi_align``'s output)."""
    if sampling_ratio < 1:
        raise ValueError(f"sampling_ratio must be >= 1 (roi_align's adaptive count is not "
                         f"supported), got {sampling_ratio}")
    _, c, h, w = features.shape
    p, r = output_size, sampling_ratio
    out = []
    for fmap, b in zip(features, boxes):
        k = len(b)
        if k == 0:
            out.append(fmap.new_zeros(0, c, p, p))
            continue
        b = b.to(fmap.dtype)
        wy = _weights(b[:, 1], b[:, 3], spatial_scale, p, r, h)  # [K, P, H]
        wx = _weights(b[:, 0], b[:, 2], spatial_scale, p, r, w)  # [K, P, W]
        rows = (wy.reshape(k * p, h) @ fmap.transpose(0, 1).reshape(h, c * w))  # [K·P, C·W]
        crop = rows.reshape(k, p * c, w) @ wx.transpose(1, 2)  # [K, P·C, P]
        out.append(crop.reshape(k, p, c, p).transpose(1, 2))
    return torch.cat(out).contiguous()


class RoICrop(MultiScaleRoIAlign):
    """torchvision's ``MultiScaleRoIAlign`` (its feature selection and scale inference) on
    one level, cropping with :func:`roi_crop`."""

    def forward(self, x: dict[str, Tensor], boxes: list[Tensor],
                image_shapes: list[tuple[int, int]]) -> Tensor:
        maps = _filter_input(x, self.featmap_names)
        if len(maps) != 1:
            raise ValueError(f"RoICrop crops one feature map, got {len(maps)}")
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(maps, image_shapes, self.canonical_scale,
                                                         self.canonical_level)
        return roi_crop(maps[0], boxes, int(self.output_size[0]), self.scales[0],
                        self.sampling_ratio)
