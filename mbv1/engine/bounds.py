"""The allowed range of every numeric config key, checked where a value enters
(:meth:`mbv1.engine.config.Config.set`): a recipe, a CLI shortcut, ``--set``, a checkpoint.

One table for every task's sections, keyed ``section.field``; lists and tuples are checked
item by item. ``tests/test_errors_settings.py`` keeps it complete: every int or float field of
every task is either here or in :data:`UNBOUNDED` with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mbv1.errors import MBV1Error


@dataclass(frozen=True)
class Range:
    """``lo``/``hi`` (None: no bound), each bound included unless ``*_open``."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, v: float) -> bool:
        if isinstance(v, float) and not math.isfinite(v):
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return not (self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi))

    def describe(self) -> str:
        lo, hi = _num(self.lo), _num(self.hi)
        if self.hi is None:
            return f"greater than {lo}" if self.lo_open else f"at least {lo}"
        if self.lo is None:
            return f"less than {hi}" if self.hi_open else f"at most {hi}"
        return f"in {'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"


def _num(v: float | None) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


POSITIVE = Range(0, None, lo_open=True)  # > 0
AT_LEAST_0 = Range(0)
AT_LEAST_1 = Range(1)
FRACTION = Range(0, 1)  # [0, 1]
FRACTION_BELOW_1 = Range(0, 1, hi_open=True)  # [0, 1)
SHARE = Range(0, 1, lo_open=True)  # (0, 1]
SEED = Range(0, 2**32 - 1)  # NumPy's seeds

BOUNDS: dict[str, Range] = {
    # train
    "train.epochs": AT_LEAST_1, "train.batch_size": AT_LEAST_1, "train.lr": POSITIVE,
    "train.momentum": FRACTION_BELOW_1, "train.rmsprop_decay": FRACTION_BELOW_1,
    "train.rmsprop_eps": POSITIVE, "train.adam_betas": FRACTION_BELOW_1,
    "train.decay_rate": SHARE, "train.decay_epochs": POSITIVE, "train.milestones": AT_LEAST_0,
    "train.min_lr_ratio": FRACTION, "train.warmup_epochs": AT_LEAST_0,
    "train.weight_decay": AT_LEAST_0, "train.label_smoothing": FRACTION_BELOW_1,
    "train.grad_clip": AT_LEAST_0, "train.ema_decay": Range(0, 1, True, True),
    "train.seed": SEED, "train.workers": AT_LEAST_0, "train.threads": AT_LEAST_0,
    "train.eval_every": AT_LEAST_1,
    # model: α scales every layer's width (the paper: 0.25-1; MobileNetV2 up to 1.4)
    "model.alpha": Range(0, 4, lo_open=True), "model.resolution": Range(32, 4096),
    "model.bn_eps": POSITIVE, "model.bn_momentum": FRACTION, "model.dropout": FRACTION_BELOW_1,
    # data (common, classification, detection, faces)
    "data.val_split": FRACTION_BELOW_1, "data.split_seed": SEED, "data.crop_scale": SHARE,
    "data.color_jitter": FRACTION, "data.eval_crop": SHARE, "data.mean": FRACTION,
    "data.std": POSITIVE, "data.expand_max": AT_LEAST_1, "data.min_box_px": AT_LEAST_0,
    "data.vid_stride": AT_LEAST_1, "data.max_frames": AT_LEAST_0, "data.crop_size": Range(16),
    "data.margin": AT_LEAST_0, "data.degrade": FRACTION,
    # run
    "run.log_every": AT_LEAST_0,
    # ssd (detection)
    "ssd.extra_depths": AT_LEAST_1, "ssd.min_depth": AT_LEAST_1, "ssd.min_scale": POSITIVE,
    "ssd.max_scale": POSITIVE, "ssd.aspect_ratios": POSITIVE,
    "ssd.interpolated_scale_aspect_ratio": AT_LEAST_0, "ssd.matched_threshold": FRACTION,
    "ssd.unmatched_threshold": FRACTION, "ssd.neg_pos_ratio": AT_LEAST_0,
    "ssd.min_negatives": AT_LEAST_0, "ssd.loc_weight": AT_LEAST_0, "ssd.cls_weight": AT_LEAST_0,
    "ssd.eval_conf": FRACTION, "ssd.nms_iou": FRACTION, "ssd.max_det": AT_LEAST_1,
    # faster_rcnn (detection, model.framework=faster-rcnn)
    "faster_rcnn.rpn_depth": AT_LEAST_1, "faster_rcnn.anchor_sizes": POSITIVE,
    "faster_rcnn.aspect_ratios": POSITIVE, "faster_rcnn.proposals": AT_LEAST_1,
    "faster_rcnn.rpn_pre_nms": AT_LEAST_1, "faster_rcnn.rpn_nms_iou": FRACTION,
    "faster_rcnn.crop_size": AT_LEAST_1, "faster_rcnn.roi_pool": AT_LEAST_1,
    "faster_rcnn.sampling_ratio": AT_LEAST_0, "faster_rcnn.rpn_batch": AT_LEAST_1,
    "faster_rcnn.box_batch": AT_LEAST_1, "faster_rcnn.eval_conf": FRACTION,
    "faster_rcnn.nms_iou": FRACTION, "faster_rcnn.max_det": AT_LEAST_1,
    # partition (geolocation): S2 levels are 0-30
    "partition.t1": AT_LEAST_1, "partition.t2": AT_LEAST_0, "partition.min_level": Range(0, 30),
    "partition.max_level": Range(0, 30), "partition.smoothing": FRACTION_BELOW_1,
    # distill (faces)
    "distill.embedding_dim": AT_LEAST_1, "distill.age_weight": AT_LEAST_0,
    "distill.embedding_weight": AT_LEAST_0, "distill.celeba_weight": AT_LEAST_0,
    "distill.max_negatives": AT_LEAST_0, "distill.feature_weight": AT_LEAST_0,
    # distill (detection: a teacher detector's boxes on unlabelled frames)
    "distill.min_boxes": AT_LEAST_1, "distill.conf": SHARE, "distill.keep_conf": SHARE,
    "distill.soft_weight": FRACTION, "distill.vid_stride": AT_LEAST_1, "distill.dedup": AT_LEAST_0,
    "distill.max_frames": AT_LEAST_0, "distill.frame_size": AT_LEAST_0,
    "distill.train_frames": AT_LEAST_0,
    # shared (faces, model.heads=shared)
    "shared.roi_size": AT_LEAST_1, "shared.sampling_ratio": AT_LEAST_0,
    "shared.roi_margin": AT_LEAST_0, "shared.train_layers": AT_LEAST_0,
    "shared.dropout": FRACTION_BELOW_1, "shared.train_sizes": AT_LEAST_1,
    "shared.jitter_copies": AT_LEAST_0, "shared.box_jitter": FRACTION_BELOW_1,
    "shared.conf": FRACTION, "shared.iou": FRACTION, "shared.max_det": AT_LEAST_1,
}
# Numeric keys with no range of their own, and why.
UNBOUNDED: dict[str, str] = {}
# Pairs of list items that must not decrease (crop_scale: the smallest area first).
ORDERED = {"data.crop_scale"}


def check(key: str, value: Any) -> None:
    """Raise a one-line MBV1Error when ``value`` (or an item of it) is outside ``key``'s
    range; names the key, the value and the allowed range."""
    r = BOUNDS.get(key)
    if r is None or value is None or isinstance(value, (str, bool)):
        return
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    for v in items:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v not in r:
            what = f"every item of {key}" if len(items) != 1 or value is not v else key
            raise MBV1Error(f"{what} must be {r.describe()}; got {_shown(value)}"
                            f"{_HINTS.get(key, '')}")
    if key in ORDERED and list(items) != sorted(items):
        raise MBV1Error(f"{key} must be [smallest, largest]; got {_shown(value)}")


def _shown(value: Any) -> str:
    return str(list(value)) if isinstance(value, (list, tuple)) else repr(value)


_HINTS = {
    "train.batch_size": " (the global batch over all processes)",
    "model.resolution": " (the input side in pixels; the body's stride is 32)",
    "model.alpha": " (the width multiplier: 1.0 is the full model, 0.25 the smallest of the "
                   "paper)",
    "train.lr": " (the peak learning rate; the schedule lowers it from there)",
    "train.workers": " (0 loads data in the training process)",
}
