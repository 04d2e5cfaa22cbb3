"""The bodies (MobileNetV1, MobileNetV2 as the second), their building blocks, cost counting
and weight converters."""

from mbv1.backbone.bodies import BODIES, build_backbone, build_body
from mbv1.backbone.layers import ConvBNAct, DepthwiseSeparable, SamePad2d, fuse_bn, scale_channels
from mbv1.backbone.mobilenet import (
    BODY,
    BackboneConfig,
    FeatureInfo,
    MobileNetV1,
    backbone_config,
    set_bn_momentum,
)
from mbv1.backbone.mobilenet_v2 import MobileNetV2

__all__ = [
    "BODIES", "BODY", "BackboneConfig", "MobileNetV2", "build_body", "ConvBNAct", "DepthwiseSeparable", "FeatureInfo", "MobileNetV1",
    "SamePad2d", "backbone_config", "build_backbone", "fuse_bn", "scale_channels",
    "set_bn_momentum",
]
