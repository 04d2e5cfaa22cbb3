"""Argmax matcher with forced best match, TF Object Detection API ``argmax_matcher.py``.

Each anchor takes the ground-truth box it overlaps most (IoU). It is *matched* when that IoU is
≥ ``matched_threshold``, *background* when it is < ``unmatched_threshold`` and *ignored* in
between (no band at TF's ssd_mobilenet_v1 setting 0.5 / 0.5). With ``force_match`` every
ground-truth box also takes its own highest-IoU anchor, even below the threshold, so that no
object goes unmatched (TF ``force_match_for_each_row``); when two boxes force the same anchor
the first box wins, as in TF. Ties in IoU go to the lower index (first maximum).

Batched over images with different numbers of boxes: the per-image IoU matrices are padded to
the largest box count with -1, which neither matches nor forces.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn.utils.rnn import pad_sequence
from torchvision.ops import box_iou

BACKGROUND = -1
IGNORE = -2


@dataclass(frozen=True)
class MatcherConfig:
    """Thresholds on IoU; ``unmatched_threshold <= matched_threshold``."""

    matched_threshold: float = 0.5
    unmatched_threshold: float = 0.5
    force_match: bool = True

    def __post_init__(self):
        if not 0.0 <= self.unmatched_threshold <= self.matched_threshold <= 1.0:
            raise ValueError("need 0 <= unmatched_threshold <= matched_threshold <= 1, got "
                             f"{self.unmatched_threshold} and {self.matched_threshold}")


def anchors_xyxy(anchors: torch.Tensor) -> torch.Tensor:
    """``[A, 4]`` anchors ``(cy, cx, h, w)`` → ``[A, 4]`` ``(x0, y0, x1, y1)``, same units."""
    cy, cx, h, w = anchors.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def iou_matrix(gt_boxes_xyxy: list[torch.Tensor], anchors: torch.Tensor) -> torch.Tensor:
    """Padded IoU ``[N, K_max, A]`` between each image's boxes and the anchors.

    Args:
        gt_boxes_xyxy: per image ``[K_i, 4]`` boxes, normalised xyxy.
        anchors: ``[A, 4]`` (cy, cx, h, w), normalised.

    Rows past an image's ``K_i`` hold -1. ``K_max`` is 0 when no image has a box.
    """
    n, a = len(gt_boxes_xyxy), anchors.shape[0]
    sizes = [b.shape[0] for b in gt_boxes_xyxy]
    if sum(sizes) == 0:
        return anchors.new_full((n, 0, a), -1.0)
    # One IoU call over all boxes of the batch, then split back per image and pad.
    flat = box_iou(torch.cat(gt_boxes_xyxy).to(anchors.dtype), anchors_xyxy(anchors))
    return pad_sequence(list(flat.split(sizes)), batch_first=True, padding_value=-1.0)


def match(gt_boxes_xyxy: list[torch.Tensor], anchors: torch.Tensor,
          config: MatcherConfig = MatcherConfig()) -> torch.Tensor:
    """Match anchors to ground truth, per image.

    Args:
        gt_boxes_xyxy: ``N`` tensors ``[K_i, 4]`` (normalised xyxy; ``K_i`` may be 0).
        anchors: ``[A, 4]`` (cy, cx, h, w), normalised.
        config: thresholds and forced matching.

    Returns:
        ``[N, A]`` int64: the matched box index in ``0..K_i-1``, :data:`BACKGROUND` (-1) or
        :data:`IGNORE` (-2).
    """
    iou = iou_matrix(gt_boxes_xyxy, anchors)  # [N, K, A]
    n, k, a = iou.shape
    if k == 0:
        return torch.full((n, a), BACKGROUND, dtype=torch.long, device=anchors.device)
    best_iou, matches = iou.max(dim=1)  # [N, A]: first maximum on ties
    matches = torch.where(best_iou < config.unmatched_threshold,
                          torch.full_like(matches, BACKGROUND), matches)
    between = (best_iou >= config.unmatched_threshold) & (best_iou < config.matched_threshold)
    matches = torch.where(between, torch.full_like(matches, IGNORE), matches)
    if config.force_match:
        sizes = torch.tensor([b.shape[0] for b in gt_boxes_xyxy], device=iou.device)
        valid = torch.arange(k, device=iou.device)[None] < sizes[:, None]  # [N, K]
        best_anchor = iou.argmax(dim=2)  # [N, K]
        # forced[n, k, a] = box k of image n forces anchor a; the first such k wins (TF).
        forced = torch.nn.functional.one_hot(best_anchor, a).to(torch.uint8) * valid[..., None]
        forced_any, forced_box = forced.max(dim=1)  # [N, A]
        matches = torch.where(forced_any.bool(), forced_box, matches)
    return matches
