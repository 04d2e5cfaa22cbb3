"""Table 13: SSD-MobileNetV1 detection on COCO-format data — the engine's Task.

Data (``--data DIR``): ``DIR/annotations/instances_{train,val}.json`` with images in
``DIR/images/{train,val}/`` (mbv1's synthetic set), or COCO's own
``instances_{train,val}2017.json`` with ``DIR/{train,val}2017/`` (or ``DIR/images/...``);
``data.train_json`` / ``data.train_images`` / ``data.val_json`` / ``data.val_images`` name the
files explicitly, ``data.val_path`` a second folder of the same layout holding the val split.
Without a val file a ``data.val_split`` fraction of the training images is held out
(``data.split_seed``).

Model: :class:`mbv1.detection.ssd.SSD` from ``model.*`` (α, activation, padding, BN ε) and
``ssd.*`` (scoring, extra layers, anchors). Fine-tuning from any mbv1 detection checkpoint (the
face model included) goes through ``model.init``: body, extra layers and, for the same label
count, the box predictors are loaded. Loss: :func:`mbv1.detection.loss.ssd_loss`. Evaluation:
post-process (score ≥ ``ssd.eval_conf``, per-class NMS at ``ssd.nms_iou``, top
``ssd.max_det``) then pycocotools COCOeval on the named split, in percent.

``model.framework=faster-rcnn`` trains Faster R-CNN-MobileNetV1 instead (TF OD API layout,
:mod:`mbv1.detection.faster_rcnn`; settings in the ``faster_rcnn`` section, loss and evaluation
in :mod:`mbv1.tasks.detection_two_stage`) on the same data and the same COCO evaluation.

Defaults follow TF's ``ssd_mobilenet_v1_coco.config``: 300x300, RMSProp lr 0.004 (decay 0.9,
momentum 0.9, ε 1.0) ×0.95 every 800,720 steps of 24 (≈163 COCO epochs), L2 4e-5, batch 24,
200k steps (≈41 epochs of COCO train2017).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from mbv1.backbone import set_bn_momentum
from mbv1.backbone.pretrained import BODY_LABELS
from mbv1.datasets.coco import CocoDetection, collate, find_split, load_coco
from mbv1.detection.anchors import AnchorConfig
from mbv1.detection.loss import LossConfig, ssd_loss
from mbv1.detection.matcher import MatcherConfig
from mbv1.detection.ssd import SSDConfig, build_model
from mbv1.engine.config import DataConfig, choice
from mbv1.engine.task import Datasets, Metrics, Task, row_dict
from mbv1.errors import MBV1Error
from mbv1.paper import TABLE13, V2_TABLE6
from mbv1.tasks import detection_distill as distill
from mbv1.tasks import detection_two_stage as two_stage
from mbv1.tasks.detection_init import adopt_init_architecture, init_meta

PAPER_ROW = next(r for r in TABLE13 if r.model == "SSD 300 MobileNet")
AP_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")


@dataclass
class DetectionDataConfig(DataConfig):
    """``data`` section of the detection task: the common keys plus COCO file paths and the
    SSD augmentation switches."""

    # ssd: photometric, expand, IoU crop, flip; light: photometric and flip only (the paper's
    # "less augmentation" for small models, section 4); none: resize only
    augment: str = choice("ssd", "ssd", "light", "none")
    train_json: str | None = None
    train_images: str | None = None
    val_json: str | None = None
    val_images: str | None = None
    expand_max: float = 4.0  # zoom-out factor of the SSD expand (1: off)
    photometric: bool = True
    min_box_px: float = 2.0  # boxes this small in the network input are dropped in training
    holdout: tuple[str, ...] = ()  # distillation: source names (video, photo folder) held out


@dataclass
class SSDSection:
    """``ssd`` section: head, anchors, matching, loss and evaluation post-processing."""

    scoring: str = choice("sigmoid", "sigmoid", "softmax")
    head: str = choice("conv", "conv", "ssdlite")  # ssdlite: separable extras and predictors
    extra_depths: tuple[int, ...] = (512, 256, 256, 128)
    min_depth: int = 16
    taps: tuple[str, ...] = ()  # empty: the body's own (V1 conv11, conv13; V2 block13.expand, conv_head)
    min_scale: float = 0.2
    max_scale: float = 0.95
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
    interpolated_scale_aspect_ratio: float = 1.0
    reduce_boxes_in_lowest_layer: bool = True
    interpolated_last: bool = False  # the interpolated anchor last (later TF OD API releases)
    matched_threshold: float = 0.5
    unmatched_threshold: float = 0.5
    neg_pos_ratio: float = 3.0
    min_negatives: int = 0
    loc_weight: float = 1.0
    cls_weight: float = 1.0
    eval_conf: float = 0.01  # COCO AP wants low-score detections too (TF: 1e-8)
    nms_iou: float = 0.6  # TF ssd_mobilenet_v1: 0.6
    max_det: int = 100


class DetectionTask(Task):
    """SSD-MobileNetV1 on COCO-format data (paper Table 13)."""

    name = "detection"
    sections: ClassVar[dict[str, type]] = {"data": DetectionDataConfig, "ssd": SSDSection,
                                           "distill": distill.DistillSection,
                                           "model": two_stage.DetectionModelConfig,
                                           "faster_rcnn": two_stage.FasterRCNNSection}
    defaults: ClassVar[dict] = {
        "model": {"resolution": 300},
        "train": {"optimizer": "rmsprop", "lr": 0.004, "momentum": 0.9, "rmsprop_decay": 0.9,
                  "rmsprop_eps": 1.0, "schedule": "exponential", "decay_rate": 0.95,
                  "decay_epochs": 163.0, "weight_decay": 4e-5, "batch_size": 24, "epochs": 41},
    }
    primary_metric = "AP"
    paper_metric = PAPER_ROW.metric

    @classmethod
    def cost_rows(cls) -> list:
        from mbv1.detection.costs import detection_cost_rows

        return detection_cost_rows()

    def __init__(self, cfg, device: torch.device | str = "cpu"):
        super().__init__(cfg, device)
        self._anchor_cache: dict = {}
        self.val_split = "val"
        self.distilled = None  # distill_data.Distilled, once prepared
        if cfg.distill.teacher:
            cfg.adopt(distill.distill_recipe(cfg), "detector distillation's recipe", distill.log)
        self.init_meta = init_meta(cfg.model.init)  # read once: adopted now, class rows later
        self.adopted = adopt_init_architecture(cfg, self.init_meta)

    # -- data ----------------------------------------------------------------------------
    def _distill(self):
        """The teacher's boxes on the frames (labelled once; every rank its share)."""
        if self.distilled is None:
            self.distilled = distill.prepare_distilled(self.cfg, self.device)
        return self.distilled

    def _paths(self) -> tuple[tuple[Path, Path], tuple[Path, Path] | None]:
        if self.cfg.distill.teacher:
            dd = self._distill()
            return (dd.train_json, dd.root), self._val_paths()
        d = self.cfg.data
        root = Path(d.path) if d.path else None
        train = (Path(d.train_json), Path(d.train_images)) if d.train_json and d.train_images \
            else (find_split(root, "train") if root else None)
        if train is None:
            where = f"{root}/annotations/instances_train.json" if root else "data.path"
            raise MBV1Error(f"no training annotations: expected {where} (+ images/train/), or "
                            "set data.train_json and data.train_images")
        return train, self._val_paths()

    def _val_paths(self) -> tuple[Path, Path] | None:
        """The val split's files (evaluation needs no training split)."""
        if self.cfg.distill.teacher:
            dd = self._distill()
            return (dd.val_json, dd.root) if dd.val_json else None
        d = self.cfg.data
        if d.val_json and d.val_images:
            return Path(d.val_json), Path(d.val_images)
        if d.val_path:
            val = find_split(Path(d.val_path), "val")
            if val is None:
                raise MBV1Error(f"data.val_path {d.val_path} has no annotations/instances_val"
                                "*.json")
            return val
        return find_split(Path(d.path), "val") if d.path else None

    def _transforms(self):
        from mbv1.detection.augment import SSDAugment, eval_transform

        d, size = self.cfg.data, self.cfg.model.resolution
        if d.augment == "none":
            return eval_transform(size), eval_transform(size)
        light = d.augment == "light"
        train = SSDAugment(size, d.mean, expand_max=1.0 if light else d.expand_max,
                           crop=not light, photometric=d.photometric, hflip=d.hflip,
                           min_box_px=d.min_box_px, seed=self.cfg.train.seed)
        return train, eval_transform(size)

    def build_datasets(self) -> Datasets:
        d = self.cfg.data
        (train_json, train_dir), val = self._paths()
        train_tf, eval_tf = self._transforms()
        common = {"mean": d.mean, "std": d.std, "on_bad_image": d.on_bad_image}
        held_out = None
        if val is None and not self.cfg.distill.teacher:  # hold out some training images
            # (never for distillation: frames of one video would be in both splits)
            ids = sorted(load_coco(train_json).imgs)
            random.Random(d.split_seed).shuffle(ids)
            n_val = max(1, round(len(ids) * d.val_split)) if d.val_split > 0 else 0
            held_out, train_ids = sorted(ids[:n_val]), sorted(ids[n_val:])
        soft = bool(self.cfg.distill.teacher) and self.cfg.distill.soft_weight > 0
        train = CocoDetection(train_json, train_dir, train_tf, seed=self.cfg.train.seed,
                              image_ids=None if held_out is None else train_ids, soft=soft,
                              **common)
        if held_out is not None and held_out:
            val_ds = CocoDetection(train_json, train_dir, eval_tf, category_ids=train.category_ids,
                                   image_ids=held_out, **common)
            split = f"{len(val_ds):,} images held out of {train_json.name} (seed {d.split_seed})"
        elif val is not None:
            val_ds = CocoDetection(val[0], val[1], eval_tf, category_ids=train.category_ids,
                                   **common)
            split = self._split_name(val, len(val_ds))
        else:
            val_ds, split = None, "none"
        self.val_split = split
        return Datasets(train, val_ds, self._info(train.label_meta()), split)

    def build_eval_dataset(self, info: dict) -> tuple[CocoDetection, str]:
        val = self._val_paths()
        if val is None:
            return super().build_eval_dataset(info)
        _, eval_tf = self._transforms()
        d = self.cfg.data
        ds = CocoDetection(val[0], val[1], eval_tf, mean=d.mean, std=d.std,
                           on_bad_image=d.on_bad_image, category_ids=info.get("category_ids"))
        self.val_split = self._split_name(val, len(ds))
        return ds, self.val_split

    def _split_name(self, val: tuple[Path, Path], n: int) -> str:
        if self.distilled is not None:
            return f"teacher {self.cfg.distill.teacher}'s boxes on {self.distilled.split}"
        return f"{val[0].stem.removeprefix('instances_')} of {val[0].parent.parent.name} ({n:,} images)"

    def _info(self, labels: dict) -> dict:
        from mbv1.detection.preprocess import Preprocess

        d, size = self.cfg.data, self.cfg.model.resolution
        info = {**labels, "num_classes": len(labels["labels"]),
                "preprocess": Preprocess(size, tuple(d.mean), tuple(d.std)).to_dict()}
        if self.distilled is not None:
            info["distill"] = distill.info(self.cfg, self.distilled)
        if self.is_faster_rcnn:
            info["faster_rcnn"] = two_stage.faster_rcnn_config(self.cfg,
                                                               info["num_classes"]).to_dict()
        else:
            info["ssd"] = self.ssd_config(info).to_dict()
        return info

    @property
    def is_faster_rcnn(self) -> bool:
        """``model.framework=faster-rcnn``."""
        return self.cfg.model.framework == "faster-rcnn"

    def collate(self, items: list) -> dict | None:
        return collate(items)

    # -- model ---------------------------------------------------------------------------
    def ssd_config(self, info: dict) -> SSDConfig:
        """The :class:`SSDConfig` of this run (also stored as ``meta["ssd"]``)."""
        m, s = self.cfg.model, self.cfg.ssd
        anchors = AnchorConfig(s.min_scale, s.max_scale, tuple(s.aspect_ratios),
                               s.interpolated_scale_aspect_ratio, s.reduce_boxes_in_lowest_layer,
                               s.interpolated_last)
        num_classes = info.get("num_classes") or len(info["labels"])
        return SSDConfig(num_classes=num_classes, alpha=m.alpha, activation=m.activation,
                         padding=m.padding, bn_eps=m.bn_eps, extra_depths=tuple(s.extra_depths),
                         min_depth=s.min_depth, taps=tuple(s.taps), scoring=s.scoring,
                         anchors=anchors, backbone=m.backbone, head=s.head)

    def build_model(self, info: dict) -> nn.Module:
        self.labels = list(info.get("labels") or [])
        if self.cfg.model.variant != "separable":
            raise MBV1Error(f"the detection task builds SSD on the separable MobileNetV1 only; "
                            f"got model.variant={self.cfg.model.variant}")
        from mbv1.detection import faster_rcnn

        if self.is_faster_rcnn and self.cfg.model.backbone != "mobilenet_v1":
            raise MBV1Error(f"model.framework=faster-rcnn is built on MobileNetV1 (the TF OD API "
                            f"layout: RPN on conv11, conv12-13 as the box classifier); got "
                            f"model.backbone={self.cfg.model.backbone}: use model.backbone="
                            "mobilenet_v1, or model.framework=ssd for MobileNetV2")
        if faster_rcnn.is_faster_rcnn(info) or (self.is_faster_rcnn and "ssd" not in info):
            num_classes = info.get("num_classes") or len(info["labels"])
            info = {**info, "faster_rcnn": info.get("faster_rcnn")
                    or two_stage.faster_rcnn_config(self.cfg, num_classes).to_dict()}
            model = faster_rcnn.build_model(info)
        else:
            info = {**info, "ssd": info.get("ssd") or self.ssd_config(info).to_dict()}
            model = build_model(info)
        return set_bn_momentum(model, self.cfg.model.bn_momentum)

    def after_init(self, model: nn.Module, init) -> list[str]:
        """A detector as ``model.init`` whose labels share names with this data's: the class
        predictor rows of those classes (and of the background) are carried over, so e.g.
        person and car start from the COCO model's own person and car."""
        from mbv1.detection.ssd import SSD

        if not isinstance(model, SSD):
            return []
        return model.load_class_rows(init.state, self.init_meta.get("labels") or [], self.labels)

    def cost_forward(self):
        if self.is_faster_rcnn:  # the box classifier once per proposal
            return lambda model, x: model.cost_pass(x)
        return None

    def loss_config(self) -> LossConfig:
        s = self.cfg.ssd
        soft = self.cfg.distill.soft_weight if self.cfg.distill.teacher else 0.0
        return LossConfig(MatcherConfig(s.matched_threshold, s.unmatched_threshold),
                          s.neg_pos_ratio, s.min_negatives, s.loc_weight, s.cls_weight, soft)

    def anchors(self, model: nn.Module, height: int, width: int) -> torch.Tensor:
        """``[A, 4]`` anchors for an input size, cached per (size, device)."""
        ssd = getattr(model, "module", model)  # DDP
        key = (height, width, str(self.device))
        if key not in self._anchor_cache:
            self._anchor_cache[key] = ssd.anchors_for(height, width, self.device)
        return self._anchor_cache[key]

    # -- training and evaluation ---------------------------------------------------------
    def forward_loss(self, model: nn.Module, batch: dict, teacher=None) -> dict[str, torch.Tensor]:
        if two_stage.is_two_stage(model):
            return two_stage.forward_loss(model, batch)
        x = batch["image"]
        codes, logits = model(x)
        anchors = self.anchors(model, x.shape[-2], x.shape[-1])
        ssd = getattr(model, "module", model)
        return ssd_loss(codes, logits, anchors, batch, ssd.config.scoring, self.loss_config())

    def evaluate(self, model: nn.Module, loader, teacher=None) -> Metrics:
        from mbv1.detection.coco_eval import class_values, evaluate_coco, to_coco_results
        from mbv1.detection.postprocess import PostprocessConfig, postprocess

        s = self.cfg.ssd
        ds = loader.dataset
        while not isinstance(ds, CocoDetection) and hasattr(ds, "dataset"):
            ds = ds.dataset
        if two_stage.is_two_stage(model):
            return two_stage.evaluate(self, model, loader, ds)
        post = PostprocessConfig(conf=s.eval_conf, iou=s.nms_iou, max_det=s.max_det)
        results, image_ids = [], []
        loss_sum = torch.zeros((), device=self.device)
        images = 0
        for batch in loader:
            if batch is None:
                continue
            batch = self.to_device(batch)
            x = batch["image"]
            codes, logits = model(x)
            anchors = self.anchors(model, x.shape[-2], x.shape[-1])
            n = x.shape[0]
            loss_sum += ssd_loss(codes.float(), logits.float(), anchors, batch,
                                 model.config.scoring, self.loss_config())["loss"] * n
            images += n
            dets = postprocess(codes.float(), model.scores(logits.float()), anchors, post)
            ids = batch["image_id"].tolist()
            results += to_coco_results(dets, ids, batch["orig_size"].tolist(), ds.category_ids)
            image_ids += ids
        classes: dict = {}
        ap = evaluate_coco(ds.coco, results, image_ids, per_class=classes)
        # pycocotools' -1 (no ground truth of that size): left out rather than reported as 0.
        values = {k: 100.0 * v for k, v in ap.items() if v >= 0}
        if len(classes) > 1 or self.cfg.distill.teacher:  # per class: AP50_person, AP_person
            values.update(class_values(classes, dict(zip(ds.category_ids, ds.class_names))))
        values["loss"] = float(loss_sum.item() / max(images, 1))
        values.setdefault("AP", 0.0)
        split = self.val_split
        details = {"detections": len(results), "images": len(image_ids),
                   "missing_area_ranges": [k for k, v in ap.items() if v < 0]}
        if self.cfg.distill.teacher:  # which held-out source the student fails on
            details["by_source"] = distill.ap_by_source(ds.coco, results, image_ids)
        return Metrics(values, "AP", split, True, details)

    # -- reporting -----------------------------------------------------------------------
    def paper_rows(self, info: dict) -> list[dict]:
        ids = list(info.get("category_ids") or [])
        coco = len(ids) in (80, 90) and max(ids, default=0) == 90  # COCO's label space
        row = self._paper_row(info)
        note = (f"{row.table} is {row.metric}: compare only on that split" if coco else
                f"different dataset and label set: {row.table}'s COCO number is not comparable")
        if self.cfg.distill.teacher or info.get("distill"):
            coco, note = False, (f"AP against a teacher's boxes, not COCO annotations: "
                                 f"{row.table}'s number is not comparable")
        return [row_dict(row, coco, note)]

    def _paper_row(self, info: dict):
        """Table 13's row (SSD, Faster R-CNN) or, for SSDLite, MobileNetV2 Table 6's row of
        the same body."""
        if "faster_rcnn" in info:
            return two_stage.paper_row(info.get("resolution") or self.cfg.model.resolution)
        ssd = info.get("ssd") or {}
        if ssd.get("head") == "ssdlite":
            body = ssd.get("backbone", "mobilenet_v1")
            return next(r for r in V2_TABLE6 if r.extra.get("head") == "ssdlite"
                        and r.backbone == body)
        return PAPER_ROW

    @staticmethod
    def _model_name(info: dict) -> str:
        if "faster_rcnn" in info:
            return "Faster R-CNN-MobileNetV1"
        ssd = info.get("ssd") or {}
        head = "SSDLite" if ssd.get("head") == "ssdlite" else "SSD"
        return f"{head}-{BODY_LABELS.get(ssd.get('backbone', 'mobilenet_v1'))}"

    def describe(self, metrics: Metrics, info: dict) -> list[str]:
        from mbv1.detection.coco_eval import class_lines

        v = metrics.values
        ours = "  ".join(f"{k} {v[k]:.1f}" for k in AP_NAMES if k in v)
        row = self._paper_row(info)
        paper = f"paper {row.table} {row.model}: mAP {row.value:.1f}, {row.metric}"
        model = self._model_name(info)
        lines = [f"mbv1 {model} on {metrics.split}: {ours}"]
        lines += class_lines(v)
        if info.get("distill"):
            lines += distill.describe(info, metrics.details.get("by_source"))
        return [*lines, paper]
