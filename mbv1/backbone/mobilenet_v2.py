"""MobileNetV2 (Sandler et al. 2018, Table 2): mbv1's second body, with the same contract as
:class:`~mbv1.backbone.mobilenet.MobileNetV1` (``features(x, taps)``, ``feature_info``,
``forward_body`` / ``forward_head``, ``reset_classifier``).

Layers are named after TF-slim's ``mobilenet_v2`` (whose weights the real detectors carry):
``conv_stem`` (``Conv``, 3x3 stride 2), ``block0``..``block16`` (``expanded_conv``,
``expanded_conv_1``..``_16``: inverted residuals, each ``expand`` 1x1 (absent in ``block0``, whose
expansion is 1) → ``depthwise`` 3x3 → linear ``project`` 1x1, with a skip connection when the
shape is kept) and ``conv_head`` (``Conv_1``, 1x1 to 1280). A block's expansion output is a tap
of its own, ``blockN.expand`` (SSDLite's first map is ``block13.expand``, TF's
``layer_15/expansion_output``).

Width multiplier α: TF-slim's ``_make_divisible(c·α, 8)`` on every layer; ``conv_head`` keeps
1280 channels for α < 1 (TF-slim's published α < 1 checkpoints, whose parameter counts in the
slim table need it) and scales above 1 (1.4: 1792).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mbv1.backbone.layers import ConvBNAct
from mbv1.backbone.mobilenet import BackboneConfig, FeatureInfo, MobileNetBody

# Table 2 of Sandler et al.: (expansion t, output channels c, repeats n, first stride s).
BODY_V2: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)
STEM_CHANNELS_V2 = 32
HEAD_CHANNELS_V2 = 1280


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """TF-slim's ``_make_divisible``: the nearest multiple of ``divisor`` (at least
    ``min_value``), never more than 10% below ``value``."""
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


class InvertedResidual(nn.Module):
    """1x1 expansion (ReLU6) → 3x3 depthwise (ReLU6) → linear 1x1 projection, plus the input
    when stride is 1 and the channels are kept (Sandler et al., Fig. 3 and Table 1)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int, **kw):
        super().__init__()
        hidden = make_divisible(in_channels * expansion) if expansion != 1 else in_channels
        self.expand = ConvBNAct(in_channels, hidden, 1, cost_type="pointwise", **kw) \
            if hidden != in_channels else None
        self.depthwise = ConvBNAct(hidden, hidden, 3, stride, groups=hidden,
                                   cost_type="depthwise", **kw)
        kw = {**kw, "activation": None}
        self.project = ConvBNAct(hidden, out_channels, 1, cost_type="pointwise", **kw)
        self.hidden = hidden
        self.residual = stride == 1 and in_channels == out_channels

    def expansion(self, x: torch.Tensor) -> torch.Tensor:
        return self.expand(x) if self.expand is not None else x

    def rest(self, x: torch.Tensor, expanded: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(expanded))
        return x + y if self.residual else y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rest(x, self.expansion(x))


class MobileNetV2(MobileNetBody):
    """The MobileNetV2 body plus an optional ImageNet-style classifier.

    Args:
        alpha, activation, padding, bn_eps: see :class:`~mbv1.backbone.mobilenet.BackboneConfig`.
        num_classes: size of the FC classifier; 0 for a headless body.
        dropout: dropout before the FC (TF-slim keeps 0.8, i.e. drops 0.2).
        in_channels: input channels (3 for RGB).
        variant: only ``separable`` (Table 4/5's variants are MobileNetV1's).
    """

    detection_taps: tuple[str, ...] = ("block13.expand", "conv_head")  # SSD's two body maps (TF OD API ssd(lite)_mobilenet_v2)

    def __init__(self, alpha: float = 1.0, num_classes: int = 1000, activation: str = "relu6",
                 padding: str = "symmetric", bn_eps: float = 1e-3, dropout: float = 0.2,
                 in_channels: int = 3, variant: str = "separable"):
        super().__init__()
        if variant != "separable":
            raise ValueError(f"MobileNetV2 has no {variant!r} variant (variants are MobileNetV1's "
                             "Tables 4-5): use variant=separable")
        self.config = BackboneConfig(alpha, activation, variant, padding, bn_eps, "mobilenet_v2")
        kw = dict(activation=activation, padding=padding, bn_eps=bn_eps)
        stem = make_divisible(STEM_CHANNELS_V2 * alpha)
        self.conv_stem = ConvBNAct(in_channels, stem, 3, 2, cost_type="stem", **kw)
        infos = [FeatureInfo("conv_stem", stem, 2)]
        channels, stride, index = stem, 2, 0
        for t, c, n, s in BODY_V2:
            out = make_divisible(c * alpha)
            for i in range(n):
                block = InvertedResidual(channels, out, s if i == 0 else 1, t, **kw)
                name = f"block{index}"
                self.add_module(name, block)
                if block.expand is not None:
                    infos.append(FeatureInfo(f"{name}.expand", block.hidden, stride))
                stride *= s if i == 0 else 1
                channels = out
                infos.append(FeatureInfo(name, channels, stride))
                index += 1
        head = make_divisible(HEAD_CHANNELS_V2 * alpha) if alpha > 1 else HEAD_CHANNELS_V2
        self.conv_head = ConvBNAct(channels, head, 1, cost_type="pointwise", **kw)
        infos.append(FeatureInfo("conv_head", head, stride))
        self._finish(infos, num_classes, dropout)

    def blocks(self) -> list[tuple[str, nn.Module]]:
        """The body's layers in order, as (name, module); expansion taps are inside blocks."""
        names = [n for n in self.tap_names if not n.endswith(".expand")]
        return [(name, getattr(self, name)) for name in names]

    def features(self, x: torch.Tensor, taps: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Run the body; return the requested taps (default: the last layer) by name."""
        names = self.tap_names
        wanted = set(taps) if taps is not None else {names[-1]}
        unknown = wanted - set(names)
        if unknown:
            raise ValueError(f"unknown taps {sorted(unknown)}; available: {names}")
        last = max(names.index(t) for t in wanted)
        out = {}
        for name, block in self.blocks():
            if names.index(name) > last and f"{name}.expand" not in wanted:
                break
            if isinstance(block, InvertedResidual):
                e = block.expansion(x)
                if f"{name}.expand" in wanted:
                    out[f"{name}.expand"] = e
                    if names.index(name) > last:
                        break
                x = block.rest(x, e)
            else:
                x = block(x)
            if name in wanted:
                out[name] = x
        return out
