"""MobileNetV2's own rules (the shared contract is tests/test_backbone_contract.py): TF-slim's
channel rule per α (checked against torchvision's independent definition too), the taps SSDLite
uses, the inverted residual's skip connection and BatchNorm folding."""

import pytest
import torch

from mbv1.backbone import fuse_bn
from mbv1.backbone.mobilenet_v2 import InvertedResidual, MobileNetV2

# TF-slim's _make_divisible(c·α, 8) on (stem, the 7 stages' outputs) and conv_head, which stays
# 1280 for α < 1 and scales above 1.
CHANNELS = {
    0.35: (16, (8, 8, 16, 24, 32, 56, 112), 1280),
    0.5: (16, (8, 16, 16, 32, 48, 80, 160), 1280),
    0.75: (24, (16, 24, 24, 48, 72, 120, 240), 1280),
    1.0: (32, (16, 24, 32, 64, 96, 160, 320), 1280),
    1.3: (40, (24, 32, 40, 80, 128, 208, 416), 1664),
    1.4: (48, (24, 32, 48, 88, 136, 224, 448), 1792),
}
REPEATS = (1, 2, 3, 4, 3, 3, 1)


@pytest.mark.parametrize("alpha", sorted(CHANNELS))
def test_channel_rule_per_alpha(alpha):
    stem, stages, head = CHANNELS[alpha]
    m = MobileNetV2(alpha, num_classes=0)
    info = {f.name: f.channels for f in m.feature_info}
    assert info["conv_stem"] == stem and info["conv_head"] == head == m.num_features
    blocks = [info[f"block{i}"] for i in range(17)]
    assert blocks == [c for c, n in zip(stages, REPEATS) for _ in range(n)]
    # expansion 6 of each block's input (block0 has none)
    assert "block0.expand" not in info
    inputs = [stem, *blocks[:-1]]
    assert [info[f"block{i}.expand"] for i in range(1, 17)] == [6 * c for c in inputs[1:]]


@pytest.mark.parametrize("alpha", sorted(CHANNELS))
def test_every_conv_matches_torchvision(alpha):
    """torchvision's mobilenet_v2 (its own _make_divisible, hidden = round(in·6)) has the same
    conv shapes, in the same order, at every α."""
    torchvision = pytest.importorskip("torchvision")
    ref = torchvision.models.mobilenet_v2(width_mult=alpha)
    ours = MobileNetV2(alpha)

    def shapes(model):
        return [tuple(m.weight.shape) for m in model.modules()
                if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]

    assert shapes(ours) == shapes(ref)


def test_taps_for_ssdlite():
    m = MobileNetV2(num_classes=0).eval()
    assert m.detection_taps == ("block13.expand", "conv_head")
    info = {f.name: (f.channels, f.stride) for f in m.feature_info}
    assert info["block13.expand"] == (576, 16) and info["conv_head"] == (1280, 32)
    assert info["block12"] == (96, 16) and info["block13"] == (160, 32)
    x = torch.randn(1, 3, 320, 320)
    with torch.no_grad():
        f = m.features(x, ["block13.expand", "conv_head", "block3.expand"])
        assert f["block13.expand"].shape == (1, 576, 20, 20)
        assert f["conv_head"].shape == (1, 1280, 10, 10)
        assert f["block3.expand"].shape == (1, 144, 80, 80)  # block2's 24 channels x 6 at stride 4
        only = m.features(x, ["block13.expand"])  # stops at the expansion, before block13 runs
        assert list(only) == ["block13.expand"]
        torch.testing.assert_close(only["block13.expand"], f["block13.expand"])
        torch.testing.assert_close(f["conv_head"], m.forward_body(x))


@pytest.mark.parametrize("alpha", [0.35, 1.0, 1.4])
def test_residual_only_where_stride_one_and_same_channels(alpha):
    m = MobileNetV2(alpha)
    residual = []
    for name, block in m.blocks():
        if not isinstance(block, InvertedResidual):
            continue
        stride = block.depthwise.conv.stride[0]
        cin, cout = block.project.conv.in_channels, block.project.conv.out_channels
        cin = block.expand.conv.in_channels if block.expand is not None else cin
        assert block.residual == (stride == 1 and cin == cout), name
        residual.append(block.residual)
    # Table 2: the repeats after each stage's first block keep the shape (1+2+3+2+2)
    assert sum(residual) == 10 and not residual[0] and not residual[-1]


def test_the_skip_adds_the_input():
    """With the projection's BN zeroed a residual block is the identity, a strided one is 0."""
    torch.manual_seed(0)
    m = MobileNetV2(0.5).eval()
    x = torch.randn(1, 16, 28, 28)
    keep, stride2 = m.block2, m.block1  # 16 -> 16 stride 1; 8 -> 16 stride 2
    assert keep.residual and not stride2.residual
    for block in (keep, stride2):
        torch.nn.init.zeros_(block.project.bn.weight)
        torch.nn.init.zeros_(block.project.bn.bias)
    with torch.no_grad():
        torch.testing.assert_close(keep(x), x)
        assert stride2(torch.randn(1, 8, 28, 28)).abs().max() == 0


@pytest.mark.parametrize("padding", ["symmetric", "same"])
def test_bn_folding_preserves_outputs(padding):
    """Folded at α=1.4 on an odd input (TF "SAME" pads unevenly there), residuals included."""
    torch.manual_seed(2)
    m = MobileNetV2(1.4, num_classes=5, padding=padding)
    m.train()
    with torch.no_grad():
        for _ in range(3):
            m(torch.randn(4, 3, 97, 97) * 2 + 0.3)
    m.eval()
    x = torch.randn(2, 3, 97, 97)
    with torch.no_grad():
        ref = m(x)
        taps = m.features(x, ["block13.expand", "block15"])
        fuse_bn(m)
        assert not any(isinstance(mod, torch.nn.BatchNorm2d) for mod in m.modules())
        torch.testing.assert_close(m(x), ref, rtol=1e-4, atol=1e-4)
        for name, f in m.features(x, ["block13.expand", "block15"]).items():
            torch.testing.assert_close(f, taps[name], rtol=1e-4, atol=1e-4)


def test_only_the_separable_variant():
    with pytest.raises(ValueError, match="separable"):
        MobileNetV2(variant="shallow")
