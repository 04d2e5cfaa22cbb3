"""The TF Object Detection API's SSD anchor generator (``ssd_anchor_generator.py``).

Layer ``k`` of ``m`` gets scale ``s_k = min + (max - min)·k/(m-1)`` (0.2 … 0.95) and one box per
aspect ratio (height ``s/√r``, width ``s·√r``) plus an interpolated box of scale
``√(s_k·s_{k+1})`` and ratio 1 (``s_m = 1``), placed right after the ratio-1 box as in the
2017 ``create_ssd_anchors`` that the paper's models (and the face model) were built with, or
last (``interpolated_last``: later TF releases, the COCO SSDLite). The lowest layer has only
``(0.1, 1), (s_0, 2), (s_0, 1/2)``. Centres are ``((i + 0.5)/H, (j + 0.5)/W)``; anchors are
ordered by row, column, then box, which is the order the predictions are flattened in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AnchorConfig:
    """SSD anchor settings (defaults: TF OD API ``ssd_mobilenet_v1`` configs)."""

    min_scale: float = 0.2
    max_scale: float = 0.95
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
    interpolated_scale_aspect_ratio: float = 1.0
    reduce_boxes_in_lowest_layer: bool = True
    # False: the interpolated box right after the ratio-1 box (the 2017 release: the paper's
    # models, the face model); True: appended last (later TF OD API, e.g. ssdlite_mobilenet_v2)
    interpolated_last: bool = False


def box_specs(num_layers: int, cfg: AnchorConfig = AnchorConfig()) -> list[list[tuple[float, float]]]:
    """(scale, aspect ratio) of each box, per layer."""
    scales = [cfg.min_scale + (cfg.max_scale - cfg.min_scale) * i / (num_layers - 1)
              for i in range(num_layers)] + [1.0]
    specs = []
    for layer, (scale, scale_next) in enumerate(zip(scales[:-1], scales[1:])):
        if layer == 0 and cfg.reduce_boxes_in_lowest_layer:
            specs.append([(0.1, 1.0), (scale, 2.0), (scale, 0.5)])
            continue
        layer_specs = []
        extra = (math.sqrt(scale * scale_next), cfg.interpolated_scale_aspect_ratio)
        for r in cfg.aspect_ratios:
            layer_specs.append((scale, r))
            # The 2017 release (the paper's, and the face model's) puts the interpolated box
            # right after the ratio-1 box; later TF versions append it last.
            if r == 1.0 and cfg.interpolated_scale_aspect_ratio > 0 and not cfg.interpolated_last:
                layer_specs.append(extra)
        if cfg.interpolated_last and cfg.interpolated_scale_aspect_ratio > 0:
            layer_specs.append(extra)
        specs.append(layer_specs)
    return specs


def num_anchors_per_location(num_layers: int, cfg: AnchorConfig = AnchorConfig()) -> list[int]:
    return [len(s) for s in box_specs(num_layers, cfg)]


def generate_anchors(feature_sizes: list[tuple[int, int]], cfg: AnchorConfig = AnchorConfig(),
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """Anchors for feature maps of the given (height, width), normalised ``[A, 4]`` in
    ``(cy, cx, h, w)`` order (the box coder's anchor format)."""
    out = []
    for (fh, fw), specs in zip(feature_sizes, box_specs(len(feature_sizes), cfg)):
        scales = torch.tensor([s for s, _ in specs], dtype=torch.float64)
        ratios = torch.tensor([r for _, r in specs], dtype=torch.float64).sqrt()
        heights, widths = scales / ratios, scales * ratios
        cy = (torch.arange(fh, dtype=torch.float64) + 0.5) / fh
        cx = (torch.arange(fw, dtype=torch.float64) + 0.5) / fw
        cy, cx = torch.meshgrid(cy, cx, indexing="ij")  # [fh, fw]
        n = len(specs)
        grid = torch.stack([
            cy[..., None].expand(fh, fw, n), cx[..., None].expand(fh, fw, n),
            heights.expand(fh, fw, n), widths.expand(fh, fw, n)], dim=-1)
        out.append(grid.reshape(-1, 4))
    return torch.cat(out).to(dtype=torch.float32, device=device)


def cxcywh_from_yxyx(boxes: torch.Tensor) -> torch.Tensor:
    """``[ymin, xmin, ymax, xmax]`` → ``(cy, cx, h, w)``."""
    ymin, xmin, ymax, xmax = boxes.unbind(-1)
    return torch.stack([(ymin + ymax) / 2, (xmin + xmax) / 2, ymax - ymin, xmax - xmin], -1)
