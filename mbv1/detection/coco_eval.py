"""COCO box AP through pycocotools ``COCOeval`` (the metric of Table 13).

Detections are COCO results: ``{"image_id", "category_id", "bbox": [x, y, w, h] pixels of the
original image, "score"}``. Metrics are fractions in [0, 1] (Table 13 prints percent);
pycocotools gives -1 for an area range without ground truth.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Iterable, Sequence

import numpy as np
import torch

AP_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")  # COCOeval.stats[0:6]


def evaluate_coco(coco_gt, detections: Sequence[dict],
                  image_ids: Iterable[int] | None = None,
                  per_class: dict | None = None) -> dict[str, float]:
    """COCO bbox metrics of ``detections`` against ``coco_gt``.

    Args:
        coco_gt: a pycocotools ``COCO`` (e.g. ``CocoDetection.coco``).
        detections: COCO result dicts (pixel xywh); may be empty.
        image_ids: evaluate on these images only (default: all images of ``coco_gt``).
        per_class: a dict that receives ``{category_id: {"AP", "AP50"}}`` (classes with ground
            truth in these images; area "all", 100 detections, as COCOeval's summary).

    Returns:
        ``{"AP", "AP50", "AP75", "APs", "APm", "APl"}`` as floats; all 0.0 when there are no
        detections (pycocotools' ``loadRes([])`` would raise IndexError).
    """
    from pycocotools.cocoeval import COCOeval

    ids = sorted(coco_gt.getImgIds()) if image_ids is None else sorted(int(i) for i in image_ids)
    if len(detections) == 0 or len(ids) == 0:
        return {k: 0.0 for k in AP_KEYS}
    with contextlib.redirect_stdout(io.StringIO()):
        # loadRes adds "area"/"id" to the dicts it is given: hand it copies.
        coco_dt = coco_gt.loadRes(copy.deepcopy(list(detections)))
        ev = COCOeval(coco_gt, coco_dt, iouType="bbox")
        ev.params.imgIds = ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    if per_class is not None:
        precision = ev.eval["precision"]  # [IoU, recall, class, area, max dets]
        for k, cat in enumerate(ev.params.catIds):
            p = precision[:, :, k, 0, -1]
            if (p > -1).any():
                p50 = p[0][p[0] > -1]
                per_class[int(cat)] = {"AP": float(p[p > -1].mean()),
                                       "AP50": float(p50.mean()) if p50.size else 0.0}
    return {k: float(v) for k, v in zip(AP_KEYS, ev.stats[:6])}


def to_coco_results(detections: Sequence[dict[str, torch.Tensor]], image_ids: Sequence[int],
                    orig_sizes: Sequence[Sequence[int]],
                    category_ids: Sequence[int]) -> list[dict]:
    """Post-processed detections (normalised to the network input) → COCO result dicts.

    Args:
        detections: per image ``{"boxes_xyxy" [K, 4] in [0, 1], "scores" [K], "labels" [K]}``
            with 0-based class indices (:func:`mbv1.detection.postprocess.postprocess`).
        image_ids: COCO image id per image.
        orig_sizes: ``(height, width)`` in pixels of each original image (the input was a plain
            resize, so normalised coordinates map straight onto it).
        category_ids: COCO category id of each 0-based class index.

    Returns:
        ``[{"image_id", "category_id", "bbox": [x, y, w, h] pixels, "score"}]``.
    """
    cats = np.asarray(category_ids, np.int64)
    out = []
    for det, image_id, (h, w) in zip(detections, image_ids, orig_sizes):
        boxes = det["boxes_xyxy"].detach().float().cpu().numpy().reshape(-1, 4)
        boxes = boxes * np.array([w, h, w, h], np.float32)
        scores = det["scores"].detach().float().cpu().numpy()
        labels = det["labels"].detach().cpu().numpy().astype(np.int64)
        for (x0, y0, x1, y1), s, lb in zip(boxes.tolist(), scores.tolist(), labels.tolist()):
            out.append({"image_id": int(image_id), "category_id": int(cats[lb]),
                        "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                        "score": round(float(s), 5)})
    return out


def class_values(per_class: dict, names: dict) -> dict[str, float]:
    """``evaluate_coco``'s ``per_class`` as metric values in percent: ``AP50_<name>``,
    ``AP_<name>`` (spaces in names become ``_``)."""
    out = {}
    for cat, v in per_class.items():
        name = str(names.get(cat, cat)).replace(" ", "_")
        out[f"AP50_{name}"], out[f"AP_{name}"] = 100 * v["AP50"], 100 * v["AP"]
    return out


def class_lines(values: dict) -> list[str]:
    """The ``per class: …`` line of an evaluation's values (none without per-class values)."""
    per = [(k.removeprefix("AP50_"), values[k], values.get("AP_" + k.removeprefix("AP50_"), 0.0))
           for k in values if k.startswith("AP50_")]
    return ["per class: " + "; ".join(f"{n} AP50 {a50:.1f} AP {a:.1f}" for n, a50, a in per)] \
        if per else []
