"""SSD multibox loss, TF Object Detection API ``ssd_mobilenet_v1`` conventions.

* targets: :func:`mbv1.detection.matcher.match` (IoU 0.5, forced best match), box targets
  encoded by :func:`mbv1.detection.box_coder.encode` (scales 10, 10, 5, 5);
* localisation: smooth L1 (TF's Huber loss, δ = 1) summed over the 4 codes, positives only;
* classification: ``sigmoid`` scoring → binary cross-entropy of every logit (background column
  included) against one-hot targets (TF ``weighted_sigmoid``); ``softmax`` scoring → softmax
  cross-entropy (original SSD);
* hard-negative mining (TF ``hard_example_miner``, loss_type CLASSIFICATION): per image keep the
  positives and the ``max(min_negatives, ⌊3·num_pos⌋)`` background anchors of highest
  classification loss. TF also runs an NMS at IoU 0.99 over the candidates and caps them at
  3000 per image; neither changes the selection at SSD300's 1917 anchors in practice, so both
  are left out;
* both sums normalised by the number of matched anchors in the batch, clamped to ≥ 1;
* distillation (``soft_weight`` > 0 and a batch with ``soft``: the teacher's score of every class
  at each target box): a matched anchor's class target is ``(1 − w)·one-hot + w·soft`` of its
  box (sigmoid: per column; softmax: the soft row with background ``1 − Σ`` as a distribution),
  Chen et al. 2017's soft targets on the anchors the hard boxes match.

Everything is batched tensor work: no ``.item()``, no loop over anchors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

from mbv1.detection.box_coder import encode
from mbv1.detection.matcher import BACKGROUND, MatcherConfig, match


@dataclass(frozen=True)
class LossConfig:
    """Matching thresholds, mining and weights (defaults: TF ssd_mobilenet_v1 COCO config)."""

    matcher: MatcherConfig = field(default_factory=MatcherConfig)
    neg_pos_ratio: float = 3.0  # TF max_negatives_per_positive
    min_negatives: int = 0  # TF min_negatives_per_image
    loc_weight: float = 1.0
    cls_weight: float = 1.0
    soft_weight: float = 0.0  # weight of the teacher's class scores in the matched anchors' targets


def _as_lists(targets) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Accept a collated batch dict (lists under "boxes"/"labels") or a list of per-image dicts."""
    if isinstance(targets, dict):
        return list(targets["boxes"]), list(targets["labels"])
    return [t["boxes"] for t in targets], [t["labels"] for t in targets]


def assign_targets(gt_boxes_xyxy: list[torch.Tensor], gt_labels: list[torch.Tensor],
                   anchors: torch.Tensor, matches: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-anchor regression and class targets from the matches.

    Args:
        gt_boxes_xyxy: ``N`` tensors ``[K_i, 4]``, normalised xyxy.
        gt_labels: ``N`` int64 tensors ``[K_i]``, 1-based class ids.
        anchors: ``[A, 4]`` (cy, cx, h, w).
        matches: ``[N, A]`` from :func:`match` (box index, -1 background, -2 ignore).

    Returns:
        ``codes [N, A, 4]`` (zeros where not matched) and ``labels [N, A]`` int64
        (0 = background, also for ignored anchors).
    """
    n, a = matches.shape
    positive = matches >= 0
    if max((b.shape[0] for b in gt_boxes_xyxy), default=0) == 0:
        return anchors.new_zeros(n, a, 4), torch.zeros_like(matches)
    boxes = pad_sequence([b.to(anchors.dtype) for b in gt_boxes_xyxy], batch_first=True)
    labels = pad_sequence([lb.long() for lb in gt_labels], batch_first=True)  # [N, K]
    idx = matches.clamp(min=0)
    matched_boxes = boxes.gather(1, idx[..., None].expand(n, a, 4))  # [N, A, 4]
    codes = torch.where(positive[..., None], encode(matched_boxes, anchors), 0.0)
    target_labels = torch.where(positive, labels.gather(1, idx), 0)
    return codes, target_labels


def assign_soft(soft: list[torch.Tensor], matches: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[N, A, C]``: each matched anchor's row of its box's teacher class scores (zeros
    elsewhere), from per-image ``[K_i, C]`` rows and :func:`match`'s ``[N, A]``."""
    n, a = matches.shape
    if max((s.shape[0] for s in soft), default=0) == 0:
        return matches.new_zeros(n, a, num_classes, dtype=torch.float32)
    rows = pad_sequence([s.to(matches.device, torch.float32) for s in soft], batch_first=True)
    got = rows.gather(1, matches.clamp(min=0)[..., None].expand(n, a, rows.shape[-1]))
    return torch.where((matches >= 0)[..., None], got, 0.0)


def classification_loss(class_logits: torch.Tensor, target_labels: torch.Tensor,
                        scoring: str, soft: torch.Tensor | None = None,
                        soft_weight: float = 0.0) -> torch.Tensor:
    """Per-anchor classification loss ``[N, A]`` from logits ``[N, A, C+1]`` and labels
    ``[N, A]`` (0 = background); ``soft [N, A, C]``: the teacher's class scores of each
    anchor's target box (zeros where unmatched), mixed in with ``soft_weight``."""
    logits = class_logits.float()
    if scoring not in ("sigmoid", "softmax"):
        raise ValueError(f"scoring must be 'sigmoid' or 'softmax', got {scoring!r}")
    if soft is None or soft_weight <= 0:
        if scoring == "softmax":
            return F.cross_entropy(logits.transpose(1, 2), target_labels, reduction="none")
        one_hot = F.one_hot(target_labels, logits.shape[-1]).to(logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, one_hot, reduction="none").sum(-1)
    one_hot = F.one_hot(target_labels, logits.shape[-1]).to(logits.dtype)
    soft = soft.to(logits.dtype).clamp(0.0, 1.0)
    positive = (target_labels > 0)[..., None]
    if scoring == "sigmoid":
        row = F.pad(soft, (1, 0))  # background column 0, as the one-hot of a positive
        target = torch.where(positive, (1 - soft_weight) * one_hot + soft_weight * row, one_hot)
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(-1)
    total = soft.sum(-1, keepdim=True)
    row = torch.cat([(1 - total).clamp(min=0.0), soft], -1)
    row = row / row.sum(-1, keepdim=True).clamp(min=1e-6)
    target = torch.where(positive, (1 - soft_weight) * one_hot + soft_weight * row, one_hot)
    return -(target * F.log_softmax(logits, -1)).sum(-1)


def hard_negative_mask(cls_loss: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                       neg_pos_ratio: float = 3.0, min_negatives: int = 0) -> torch.Tensor:
    """Negatives kept by hard-negative mining, ``[N, A]`` bool.

    Per image, the ``max(min_negatives, ⌊neg_pos_ratio · num_positives⌋)`` anchors of
    ``negative`` with the highest ``cls_loss`` (fewer if the image has fewer negatives).
    Ties go to the lower anchor index (stable sort).

    Args:
        cls_loss: ``[N, A]`` per-anchor classification loss (only ranked, not differentiated).
        positive: ``[N, A]`` matched anchors.
        negative: ``[N, A]`` background anchors (neither matched nor ignored).
    """
    num_pos = positive.sum(1)  # [N]
    num_neg = (num_pos.float() * neg_pos_ratio).floor().long().clamp(min=min_negatives)
    ranked = cls_loss.detach().float().masked_fill(~negative, float("-inf"))
    order = ranked.argsort(dim=1, descending=True, stable=True)
    rank = order.argsort(dim=1)  # rank[n, a] = position of anchor a in the loss ordering
    return (rank < num_neg[:, None]) & negative


def ssd_loss(box_codes: torch.Tensor, class_logits: torch.Tensor, anchors: torch.Tensor,
             targets, scoring: str = "sigmoid",
             config: LossConfig = LossConfig()) -> dict[str, torch.Tensor]:
    """SSD loss of a batch.

    Args:
        box_codes: ``[N, A, 4]`` predicted (ty, tx, th, tw).
        class_logits: ``[N, A, C+1]`` logits, column 0 = background.
        anchors: ``[A, 4]`` (cy, cx, h, w), normalised, same device.
        targets: a collated batch (dict with lists "boxes" ``[K_i, 4]`` normalised xyxy and
            "labels" ``[K_i]`` 1-based) or a list of per-image dicts with those keys.
        scoring: ``sigmoid`` or ``softmax`` (the model's ``config.scoring``).
        config: matcher thresholds, mining ratio, loss weights.

    Returns:
        ``loss`` (scalar, to minimise), ``loc`` and ``cls`` (its weighted parts, both already
        divided by the number of matches) and ``num_pos`` (matched anchors in the batch, float
        tensor). All are tensors on the input device.
    """
    boxes, labels = _as_lists(targets)
    device = box_codes.device
    boxes = [b.to(device) for b in boxes]
    labels = [lb.to(device) for lb in labels]
    matches = match(boxes, anchors, config.matcher)  # [N, A]
    target_codes, target_labels = assign_targets(boxes, labels, anchors, matches)
    soft = None
    if config.soft_weight > 0 and isinstance(targets, dict) and targets.get("soft") is not None:
        soft = assign_soft(targets["soft"], matches, class_logits.shape[-1] - 1)
    positive = matches >= 0
    negative = matches == BACKGROUND

    loc = F.smooth_l1_loss(box_codes.float(), target_codes.float(), reduction="none",
                           beta=1.0).sum(-1)  # [N, A]
    cls = classification_loss(class_logits, target_labels, scoring, soft,
                              config.soft_weight)  # [N, A]
    keep = positive | hard_negative_mask(cls, positive, negative, config.neg_pos_ratio,
                                         config.min_negatives)
    num_pos = positive.sum().float()
    normalizer = num_pos.clamp(min=1.0)
    loc_loss = config.loc_weight * (loc * positive).sum() / normalizer
    cls_loss = config.cls_weight * (cls * keep).sum() / normalizer
    return {"loss": loc_loss + cls_loss, "loc": loc_loss.detach(), "cls": cls_loss.detach(),
            "num_pos": num_pos}
