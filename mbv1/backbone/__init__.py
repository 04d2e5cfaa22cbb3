"""The MobileNetV1 body, its building blocks, cost counting and weight converters."""

from mbv1.backbone.layers import ConvBNAct, DepthwiseSeparable, SamePad2d, fuse_bn, scale_channels
from mbv1.backbone.mobilenet import (
    BODY,
    BackboneConfig,
    FeatureInfo,
    MobileNetV1,
    backbone_config,
    build_backbone,
    set_bn_momentum,
)

__all__ = [
    "BODY", "BackboneConfig", "ConvBNAct", "DepthwiseSeparable", "FeatureInfo", "MobileNetV1",
    "SamePad2d", "backbone_config", "build_backbone", "fuse_bn", "scale_channels",
    "set_bn_momentum",
]
