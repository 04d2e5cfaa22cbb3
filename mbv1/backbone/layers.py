"""Building blocks of MobileNetV1 (paper section 3.1): conv + BatchNorm + activation.

Every convolution carries a ``cost_type`` tag (``stem``, ``depthwise``, ``pointwise``, ``conv``)
that the cost counter (``mbv1.backbone.costs``) groups Table 2's rows by.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = ("relu", "relu6")
PADDINGS = ("symmetric", "same")


def make_activation(name: str) -> nn.Module:
    """ReLU (the paper) or ReLU6 (TF-slim's released code and timm)."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "relu6":
        return nn.ReLU6(inplace=True)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


def scale_channels(channels: int, alpha: float, min_depth: int = 8) -> int:
    """TF-slim's width-multiplier rule: ``max(min_depth, int(channels * alpha))``."""
    return max(min_depth, int(channels * alpha))


class SamePad2d(nn.Module):
    """TensorFlow "SAME" padding: at stride 2 it pads less on the top/left than bottom/right.

    Weights trained in TensorFlow (the face-api SSD, TF-slim checkpoints) need it to reproduce
    their outputs exactly; PyTorch's symmetric padding shifts every stride-2 layer by half a pixel.
    """

    def __init__(self, kernel_size: int, stride: int):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def _pad(self, size: int) -> tuple[int, int]:
        out = math.ceil(size / self.stride)
        total = max((out - 1) * self.stride + self.kernel_size - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = self._pad(int(x.shape[-2]))
        left, right = self._pad(int(x.shape[-1]))
        if top == bottom == left == right == 0:
            return x
        return F.pad(x, (left, right, top, bottom))


class ConvBNAct(nn.Module):
    """Conv2d (no bias) → BatchNorm2d → activation; ``fuse()`` folds the BN into the conv.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size: square kernel side (3 for depthwise/stem, 1 for pointwise).
        stride: 1 or 2.
        groups: ``in_channels`` for a depthwise conv, 1 otherwise.
        activation: ``relu``, ``relu6`` or ``None`` (linear, e.g. a prediction layer).
        padding: ``symmetric`` (PyTorch, timm) or ``same`` (TensorFlow).
        bn_eps: BatchNorm epsilon (TF-slim 1e-3, timm 1e-5).
        cost_type: Table 2 row this layer counts under.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        activation: str | None = "relu6",
        padding: str = "symmetric",
        bn_eps: float = 1e-3,
        bn_momentum: float = 0.1,
        cost_type: str | None = None,
    ):
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        same = padding == "same" and kernel_size > 1
        self.pad = SamePad2d(kernel_size, stride) if same else nn.Identity()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=0 if same else kernel_size // 2,
            groups=groups,
            bias=False,
        )
        if cost_type is None:
            cost_type = infer_cost_type(self.conv)
        self.conv.cost_type = cost_type
        self.bn: nn.Module = nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum)
        self.act = make_activation(activation) if activation else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(self.pad(x))))

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold BatchNorm into the conv (inference only): y = γ(x·w − μ)/σ + β = x·w' + b'."""
        if isinstance(self.bn, nn.Identity):
            return
        bn = self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused = nn.Conv2d(
            self.conv.in_channels,
            self.conv.out_channels,
            self.conv.kernel_size,
            stride=self.conv.stride,
            padding=self.conv.padding,
            groups=self.conv.groups,
            bias=True,
        ).to(self.conv.weight)
        fused.weight.copy_(self.conv.weight * scale.reshape(-1, 1, 1, 1))
        conv_bias = self.conv.bias if self.conv.bias is not None else 0.0
        fused.bias.copy_((conv_bias - bn.running_mean) * scale + bn.bias)
        fused.cost_type = self.conv.cost_type
        self.conv = fused
        self.bn = nn.Identity()


def infer_cost_type(conv: nn.Conv2d) -> str:
    """Table 2 row of a conv from its geometry: depthwise, pointwise (1x1) or full conv."""
    if conv.groups > 1 and conv.groups == conv.in_channels:
        return "depthwise"
    if conv.kernel_size == (1, 1):
        return "pointwise"
    return "conv"


class DepthwiseSeparable(nn.Module):
    """3x3 depthwise conv (one filter per input channel) then 1x1 pointwise conv (Fig. 3)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, **kw):
        super().__init__()
        self.depthwise = ConvBNAct(in_channels, in_channels, 3, stride, groups=in_channels,
                                   cost_type="depthwise", **kw)
        self.pointwise = ConvBNAct(in_channels, out_channels, 1, 1, cost_type="pointwise", **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def fuse_bn(model: nn.Module) -> nn.Module:
    """Fold every ConvBNAct's BatchNorm into its conv, in place; returns the model (eval mode)."""
    model.eval()
    for m in model.modules():
        if isinstance(m, ConvBNAct):
            m.fuse()
    return model
