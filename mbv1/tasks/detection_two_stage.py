"""The Faster R-CNN side of the detection task (``model.framework=faster-rcnn``, paper Table
13's second framework): its config section, model config, loss and evaluation. The SSD side
and the data are :mod:`mbv1.tasks.detection`'s; both store their model config in the
checkpoint meta under their own key (``meta["ssd"]`` / ``meta["faster_rcnn"]``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mbv1.detection.faster_rcnn import FasterRCNNConfig, MobileNetFasterRCNN
from mbv1.engine.config import ModelConfig, choice
from mbv1.engine.task import Metrics
from mbv1.paper import TABLE13

FRAMEWORKS = ("ssd", "faster-rcnn")


@dataclass
class DetectionModelConfig(ModelConfig):
    """``model`` section of the detection task: the common keys plus the framework."""

    framework: str = choice("ssd", *FRAMEWORKS)


@dataclass
class FasterRCNNSection:
    """``faster_rcnn`` section (used when ``model.framework=faster-rcnn``): TF OD API
    ``faster_rcnn_mobilenet_v1`` defaults; see :class:`FasterRCNNConfig`."""

    rpn_depth: int = 512
    anchor_sizes: tuple[float, ...] = (64.0, 128.0, 256.0, 512.0)  # input pixels
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    proposals: int = 300
    rpn_pre_nms: int = 1000
    rpn_nms_iou: float = 0.7
    crop_size: int = 14
    roi_pool: int = 2
    sampling_ratio: int = 2
    rpn_batch: int = 256
    box_batch: int = 64
    eval_conf: float = 0.01  # COCO AP wants low-score detections too
    nms_iou: float = 0.6  # TF faster_rcnn_mobilenet: second-stage NMS 0.6
    max_det: int = 100


def faster_rcnn_config(cfg, num_classes: int) -> FasterRCNNConfig:
    """The :class:`FasterRCNNConfig` of a run (stored as ``meta["faster_rcnn"]``)."""
    m, f = cfg.model, cfg.faster_rcnn
    return FasterRCNNConfig(
        num_classes=num_classes, alpha=m.alpha, activation=m.activation, padding=m.padding,
        bn_eps=m.bn_eps, rpn_depth=f.rpn_depth, anchor_sizes=tuple(f.anchor_sizes),
        aspect_ratios=tuple(f.aspect_ratios), proposals=f.proposals, rpn_pre_nms=f.rpn_pre_nms,
        rpn_nms_iou=f.rpn_nms_iou, crop_size=f.crop_size, roi_pool=f.roi_pool,
        sampling_ratio=f.sampling_ratio, rpn_batch=f.rpn_batch, box_batch=f.box_batch)


def is_two_stage(model: nn.Module) -> bool:
    return isinstance(getattr(model, "module", model), MobileNetFasterRCNN)


def paper_row(resolution: int):
    """Table 13's Faster-RCNN MobileNet row of the nearer input size (300 or 600)."""
    size = 600 if resolution >= 450 else 300
    return next(r for r in TABLE13 if r.model == f"Faster-RCNN {size} MobileNet")


def forward_loss(model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
    """The four Faster R-CNN losses and their sum, through ``model``'s own forward (so that
    DDP sees the pass): ``model(x, (boxes, labels))``."""
    return model(batch["image"], (batch["boxes"], batch["labels"]))


def evaluate(task, model: nn.Module, loader, dataset) -> Metrics:
    """COCO AP (pycocotools) of the post-processed detections on the loader's split, plus the
    mean validation loss (the training losses with BatchNorm in eval mode)."""
    from mbv1.detection.coco_eval import evaluate_coco, to_coco_results

    f = task.cfg.faster_rcnn
    results, image_ids = [], []
    loss_sum = torch.zeros((), device=task.device)
    images = 0
    for batch in loader:
        if batch is None:
            continue
        batch = task.to_device(batch)
        x = batch["image"]
        n, (h, w) = x.shape[0], x.shape[-2:]
        loss_sum += model.loss(x, batch["boxes"], batch["labels"])["loss"].float() * n
        images += n
        dets = model.detect(model(x), h, w, f.eval_conf, f.nms_iou, f.max_det)
        ids = batch["image_id"].tolist()
        results += to_coco_results(dets, ids, batch["orig_size"].tolist(), dataset.category_ids)
        image_ids += ids
    ap = evaluate_coco(dataset.coco, results, image_ids)
    values = {k: 100.0 * v for k, v in ap.items() if v >= 0}
    values["loss"] = float(loss_sum.item() / max(images, 1))
    values.setdefault("AP", 0.0)
    details = {"detections": len(results), "images": len(image_ids),
               "missing_area_ranges": [k for k, v in ap.items() if v < 0]}
    return Metrics(values, "AP", task.val_split, True, details)
