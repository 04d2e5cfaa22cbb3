"""Decode SSD outputs into detections: box decoding, score threshold, per-class NMS, top-k.

All tensor work stays on the model's device; only the final (small) detections leave it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.ops import batched_nms

from mbv1.detection.box_coder import decode


@dataclass
class PostprocessConfig:
    conf: float = 0.5  # minimum score
    iou: float = 0.5  # NMS IoU threshold (per class)
    max_det: int = 100
    classes: tuple[int, ...] | None = None  # keep only these 0-based class indices
    pre_nms_top_k: int = 1000  # candidates per image before NMS (by score)
    agnostic: bool = False  # one NMS over all classes (TF.js coco-ssd's way) instead of per class


def postprocess(box_codes: torch.Tensor, scores: torch.Tensor, anchors: torch.Tensor,
                cfg: PostprocessConfig) -> list[dict[str, torch.Tensor]]:
    """Detections per image in normalised coordinates of the network input.

    Args:
        box_codes: ``[N, A, 4]`` (ty, tx, th, tw).
        scores: ``[N, A, C]`` per-class scores (background excluded).
        anchors: ``[A, 4]`` (cy, cx, h, w).

    Returns:
        One dict per image: ``boxes_xyxy [K, 4]`` clipped to [0, 1], ``scores [K]``,
        ``labels [K]`` (0-based class index), ``anchors [K]`` (the anchor each detection was
        decoded from: its row of ``scores`` is the model's full class belief), sorted by score.
    """
    boxes = decode(box_codes, anchors)  # [N, A, 4]; NMS on unclipped boxes, as TF and face-api
    num_classes = scores.shape[-1]
    out = []
    for b, s in zip(boxes, scores):
        if cfg.classes is not None:
            mask = torch.zeros(num_classes, dtype=torch.bool, device=s.device)
            mask[list(cfg.classes)] = True
            s = s * mask
        flat = s.reshape(-1)  # [A·C], index = anchor·C + class
        k = min(cfg.pre_nms_top_k, flat.numel())
        top_scores, top_idx = flat.topk(k)
        keep = top_scores >= cfg.conf
        top_scores, top_idx = top_scores[keep], top_idx[keep]
        anchor_idx = torch.div(top_idx, num_classes, rounding_mode="floor")
        labels = top_idx % num_classes
        cand = b[anchor_idx]
        groups = torch.zeros_like(labels) if cfg.agnostic else labels
        nms_keep = batched_nms(cand, top_scores, groups, cfg.iou)[: cfg.max_det]
        out.append({"boxes_xyxy": cand[nms_keep].clamp(0.0, 1.0), "scores": top_scores[nms_keep],
                    "labels": labels[nms_keep], "anchors": anchor_idx[nms_keep]})
    return out
