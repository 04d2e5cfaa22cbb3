"""MobileNetV1 (Howard et al. 2017, Table 1) with width multiplier α and named taps.

Layers are named in the paper's / TF-slim's terms: ``conv0`` is the full 3x3 stride-2 stem,
``conv1``..``conv13`` are the depthwise separable blocks (each ``.depthwise`` + ``.pointwise``).
Resolution is not a module argument: feed any input size (the resolution multiplier ρ).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from mbv1.backbone.layers import (
    ACTIVATIONS,
    PADDINGS,
    ConvBNAct,
    DepthwiseSeparable,
    scale_channels,
)

# Table 1: (stride of the depthwise conv, output channels of the pointwise conv) for conv1..conv13.
# Quirk: the paper prints the last depthwise as stride 2 at 7x7; TF-slim and timm use 1 (so do we).
BODY: tuple[tuple[int, int], ...] = (
    (1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
    (1, 512), (1, 512), (1, 512), (1, 512), (1, 512),
    (2, 1024), (1, 1024),
)
STEM_CHANNELS = 32
SHALLOW_REMOVED = ("conv7", "conv8", "conv9", "conv10", "conv11")  # Table 5: the 5x 14x14x512 pairs
VARIANTS = ("separable", "full", "shallow")
BACKBONES = ("mobilenet_v1", "mobilenet_v2")


@dataclass(frozen=True)
class BackboneConfig:
    """Everything that defines a MobileNetV1 body; stored in checkpoints.

    Attributes:
        alpha: width multiplier α (paper 4.2); channels are ``max(8, int(c·α))`` (TF-slim).
        activation: ``relu`` (paper) or ``relu6`` (TF-slim, timm).
        variant: ``separable`` (MobileNet), ``full`` (Table 4's Conv MobileNet: every separable
            pair replaced by a full 3x3 conv) or ``shallow`` (Table 5: conv7..conv11 removed).
        padding: ``symmetric`` (PyTorch/timm) or ``same`` (TensorFlow-trained weights).
        bn_eps: BatchNorm epsilon.
        backbone: which body these settings build (``mobilenet_v1`` or ``mobilenet_v2``,
            :mod:`mbv1.backbone.bodies`); MobileNetV2 takes the ``separable`` variant only.
    """

    alpha: float = 1.0
    activation: str = "relu6"
    variant: str = "separable"
    padding: str = "symmetric"
    bn_eps: float = 1e-3
    backbone: str = "mobilenet_v1"

    def __post_init__(self):
        if not 0 < self.alpha <= 4:
            raise ValueError(f"alpha must be in (0, 4], got {self.alpha}")
        for field, allowed in (("activation", ACTIVATIONS), ("variant", VARIANTS),
                               ("padding", PADDINGS), ("backbone", BACKBONES)):
            if getattr(self, field) not in allowed:
                raise ValueError(f"{field} must be one of {allowed}, got {getattr(self, field)!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FeatureInfo:
    """A tap: its name, channel count and stride (input pixels per feature-map cell)."""

    name: str
    channels: int
    stride: int


class MobileNetBody(nn.Module):
    """What every mbv1 body shares: named taps (``feature_info``, ``tap_names``), its blocks in
    order (``blocks()``, defined by each body), pooled classifier head, weight init."""

    feature_info: list[FeatureInfo]
    num_features: int

    @property
    def tap_names(self) -> list[str]:
        return [f.name for f in self.feature_info]

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the FC with a fresh one for ``num_classes`` (0 removes it)."""
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        if num_classes:
            nn.init.normal_(self.fc.weight, 0, 0.01)
            nn.init.zeros_(self.fc.bias)

    def _finish(self, infos: list[FeatureInfo], num_classes: int, dropout: float) -> None:
        """After the layers: the taps, the pooled FC classifier (none for 0 classes), init."""
        self.feature_info = infos
        self.num_features = infos[-1].channels
        self.num_classes = num_classes
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc: nn.Module = (nn.Linear(self.num_features, num_classes) if num_classes
                              else nn.Identity())
        self._init_weights()

    def blocks(self) -> list[tuple[str, nn.Module]]:
        """The body's layers in order, as (tap name, module)."""
        raise NotImplementedError

    def forward_body(self, x: torch.Tensor) -> torch.Tensor:
        for _, block in self.blocks():
            x = block(x)
        return x

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x).flatten(1)
        return self.fc(self.dropout(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_body(x))


class MobileNetV1(MobileNetBody):
    """The MobileNetV1 body plus an optional ImageNet-style classifier.

    Args:
        alpha, activation, variant, padding, bn_eps: see :class:`BackboneConfig`.
        num_classes: size of the FC classifier; 0 for a headless body.
        dropout: dropout before the FC (TF-slim keeps 0.999, i.e. drops 0.001).
        in_channels: input channels (3 for RGB).

    ``forward(x)`` returns logits ``[N, num_classes]`` (or pooled features ``[N, C]`` when
    ``num_classes == 0``); ``features(x, taps)`` returns ``{name: [N, C, H, W]}``.
    """

    detection_taps: tuple[str, ...] = ("conv11", "conv13")  # SSD's two body maps (TF OD API ssd_mobilenet_v1)

    def __init__(
        self,
        alpha: float = 1.0,
        num_classes: int = 1000,
        activation: str = "relu6",
        variant: str = "separable",
        padding: str = "symmetric",
        bn_eps: float = 1e-3,
        dropout: float = 0.001,
        in_channels: int = 3,
    ):
        super().__init__()
        self.config = BackboneConfig(alpha, activation, variant, padding, bn_eps)
        kw = dict(activation=activation, padding=padding, bn_eps=bn_eps)
        stem = scale_channels(STEM_CHANNELS, alpha)
        self.conv0 = ConvBNAct(in_channels, stem, 3, 2, cost_type="stem", **kw)
        infos = [FeatureInfo("conv0", stem, 2)]
        channels, stride = stem, 2
        for i, (s, out) in enumerate(BODY, start=1):
            name = f"conv{i}"
            if variant == "shallow" and name in SHALLOW_REMOVED:
                continue
            out = scale_channels(out, alpha)
            if variant == "full":
                block: nn.Module = ConvBNAct(channels, out, 3, s, cost_type="conv", **kw)
            else:
                block = DepthwiseSeparable(channels, out, s, **kw)
            self.add_module(name, block)
            channels, stride = out, stride * s
            infos.append(FeatureInfo(name, channels, stride))
        self._finish(infos, num_classes, dropout)

    def blocks(self) -> list[tuple[str, nn.Module]]:
        """The body's layers in order, as (tap name, module)."""
        return [(name, getattr(self, name)) for name in self.tap_names]

    def features(self, x: torch.Tensor, taps: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Run the body; return the requested taps (default: the last layer) by name."""
        wanted = set(taps) if taps is not None else {self.tap_names[-1]}
        unknown = wanted - set(self.tap_names)
        if unknown:
            raise ValueError(f"unknown taps {sorted(unknown)}; available: {self.tap_names}")
        out = {}
        last = max(self.tap_names.index(t) for t in wanted)
        for name, block in self.blocks()[: last + 1]:
            x = block(x)
            if name in wanted:
                out[name] = x
        return out



def backbone_config(model: dict) -> BackboneConfig:
    """The body settings of a checkpoint's ``config["model"]`` section (other keys, such as
    ``resolution`` or ``dropout``, are ignored; missing ones take the defaults)."""
    names = {f.name for f in fields(BackboneConfig)}
    return BackboneConfig(**{k: v for k, v in (model or {}).items() if k in names})


def set_bn_momentum(model: nn.Module, momentum: float) -> nn.Module:
    """Every BatchNorm of ``model`` with this running-statistics momentum (PyTorch's sense)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = momentum
    return model

