"""Whether two runs of a detector found the same things: the accuracy gate of exported and
int8 models (``mbv1 export``, ``--backend auto``'s int8 choice)."""

from __future__ import annotations

import numpy as np
import torch

MATCH_IOU, MATCH_SCORE = 0.9, 0.05


def match_detections(ref_boxes, ref_scores, boxes, scores, iou: float = MATCH_IOU,
                     score_tol: float = MATCH_SCORE) -> int:
    """How many reference detections have their own detection in the other set: IoU at least
    ``iou`` and score within ``score_tol`` (greedy, best reference score first)."""
    from torchvision.ops import box_iou

    if len(ref_scores) == 0 or len(scores) == 0:
        return 0
    ious = box_iou(torch.as_tensor(ref_boxes, dtype=torch.float32),
                   torch.as_tensor(boxes, dtype=torch.float32)).numpy()
    used: set[int] = set()
    matched = 0
    for i in np.argsort(-np.asarray(ref_scores)):
        cands = [j for j in np.argsort(-ious[i]) if j not in used and ious[i, j] >= iou
                 and abs(float(scores[j]) - float(ref_scores[i])) <= score_tol]
        if cands:
            used.add(cands[0])
            matched += 1
    return matched
