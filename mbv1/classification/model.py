"""The classifier a classification checkpoint holds: MobileNetV1 with its FC over the labels."""

from __future__ import annotations

from mbv1.backbone.bodies import build_backbone
from mbv1.backbone.mobilenet import MobileNetV1, backbone_config
from mbv1.errors import MBV1Error

TASKS = ("classification", "fine-grained")


def labels_of(info: dict) -> list[str]:
    """Label names of a meta; converted peer weights carry only ``num_classes``."""
    labels = info.get("labels")
    if labels:
        return list(labels)
    if info.get("num_classes"):
        return [str(i) for i in range(int(info["num_classes"]))]
    raise MBV1Error("the checkpoint meta has neither labels nor num_classes")


def build_model(meta: dict, model: dict) -> MobileNetV1:
    """MobileNetV1 + FC for the labels of ``meta``, with the body settings of ``model`` (a
    config ``model`` section: alpha, activation, variant, padding, bn_eps, dropout)."""
    return build_backbone(backbone_config(model), num_classes=len(labels_of(meta)),
                          dropout=float(model.get("dropout", 0.001)))
