"""COCO evaluation on a tiny hand-made ground truth."""

from __future__ import annotations

import json

import pytest
import torch

from mbv1.datasets.coco import load_coco
from mbv1.detection.coco_eval import AP_KEYS, evaluate_coco, to_coco_results

GT_BOXES = {1: [(1, [10, 10, 20, 20]), (2, [50, 40, 60, 50])],  # image: [(category, xywh)]
            # small (400 px²) and medium (3,000 px²) above
            2: [(1, [5, 60, 100, 80]), (2, [40, 0, 150, 100])],  # medium, large
            3: []}


@pytest.fixture
def coco_gt(tmp_path):
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 200, "height": 160} for i in GT_BOXES]
    anns = [{"id": 10 * i + k, "image_id": i, "category_id": c, "bbox": b, "area": b[2] * b[3],
             "iscrowd": 0} for i, objs in GT_BOXES.items() for k, (c, b) in enumerate(objs)]
    cats = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    path = tmp_path / "instances_val.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return load_coco(path)


def perfect():
    return [{"image_id": i, "category_id": c, "bbox": list(b), "score": 0.9}
            for i, objs in GT_BOXES.items() for c, b in objs]


def test_perfect_predictions_give_ap_one(coco_gt):
    m = evaluate_coco(coco_gt, perfect())
    assert set(m) == set(AP_KEYS)
    assert m["AP"] == pytest.approx(1.0) and m["AP50"] == pytest.approx(1.0)
    assert m["AP75"] == pytest.approx(1.0)
    assert m["APs"] == pytest.approx(1.0) and m["APm"] == pytest.approx(1.0)
    assert m["APl"] == pytest.approx(1.0)


def test_shifted_predictions_score_less(coco_gt):
    dets = perfect()
    for d in dets:
        x, y, w, h = d["bbox"]
        d["bbox"] = [x + 0.2 * w, y + 0.1 * h, w, h]  # IoU 0.56: counts at 0.5, not at 0.75
    m = evaluate_coco(coco_gt, dets)
    assert m["AP50"] == pytest.approx(1.0) and m["AP75"] == pytest.approx(0.0)
    assert 0.0 < m["AP"] < 1.0
    wrong_class = [{**d, "category_id": 3 - d["category_id"]} for d in perfect()]
    assert evaluate_coco(coco_gt, wrong_class)["AP"] == pytest.approx(0.0)


def test_empty_predictions_and_image_subset(coco_gt):
    assert evaluate_coco(coco_gt, []) == {k: 0.0 for k in AP_KEYS}
    only_two = [d for d in perfect() if d["image_id"] == 2]
    assert evaluate_coco(coco_gt, only_two, image_ids=[2, 3])["AP"] == pytest.approx(1.0)
    assert evaluate_coco(coco_gt, only_two)["AP"] < 1.0


def test_to_coco_results_maps_labels_and_pixels():
    det = {"boxes_xyxy": torch.tensor([[0.1, 0.25, 0.5, 0.75]]), "scores": torch.tensor([0.8]),
           "labels": torch.tensor([1])}
    out = to_coco_results([det, {k: v[:0] for k, v in det.items()}], [7, 8],
                          [(160, 200), (10, 10)], [3, 9])
    assert out == [{"image_id": 7, "category_id": 9, "bbox": [20.0, 40.0, 80.0, 80.0],
                    "score": 0.8}]


def test_ground_truth_without_area_or_iscrowd(tmp_path):
    """User files often omit ``area`` and ``iscrowd``; COCOeval needs them: they are filled."""
    images = [{"id": 1, "file_name": "1.jpg", "width": 100, "height": 100}]
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 20]}]
    path = tmp_path / "instances_val.json"
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": 1, "name": "a"}]}))
    gt = load_coco(path)
    assert gt.anns[1]["area"] == 600.0 and gt.anns[1]["iscrowd"] == 0
    det = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 20], "score": 0.5}]
    assert evaluate_coco(gt, det)["AP"] == pytest.approx(1.0)
