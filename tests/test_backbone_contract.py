"""The generic model contract (after timm's): every α × resolution builds, runs, trains."""

import itertools

import pytest
import torch

from mbv1.backbone import MobileNetV1, fuse_bn

ALPHAS = (1.0, 0.75, 0.5, 0.25)
RESOLUTIONS = (224, 192, 160, 128)


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {a: MobileNetV1(alpha=a, num_classes=10) for a in ALPHAS}


@pytest.mark.parametrize("alpha,resolution", list(itertools.product(ALPHAS, RESOLUTIONS)))
def test_contract(models, alpha, resolution):
    model = models[alpha]
    model.train()
    x = torch.randn(2, 3, resolution, resolution)
    feats = model.features(x, model.tap_names)
    for info in model.feature_info:
        f = feats[info.name]
        expected = -(-resolution // info.stride)  # ceil: symmetric padding keeps ceil(size/stride)
        assert f.shape == (2, info.channels, expected, expected), info
        assert torch.isfinite(f).all()
    logits = model(x)
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()
    model.zero_grad()
    logits.square().mean().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad, f"backward did not reach {no_grad[:3]}"


@pytest.mark.parametrize("alpha", ALPHAS)
def test_state_dict_round_trip(models, alpha):
    a = models[alpha].eval()
    b = MobileNetV1(alpha=alpha, num_classes=10).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 3, 128, 128)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_channels_follow_tf_slim_rule():
    m = MobileNetV1(alpha=0.25)
    assert [f.channels for f in m.feature_info] == [8, 16, 32, 32, 64, 64, 128, 128, 128, 128,
                                                    128, 128, 256, 256]
    assert MobileNetV1(alpha=0.1).feature_info[0].channels == 8  # min depth 8


def test_last_depthwise_is_stride_one():
    m = MobileNetV1()
    assert m.conv13.depthwise.conv.stride == (1, 1)
    assert m.feature_info[-1].stride == 32


def test_variants():
    full = MobileNetV1(variant="full")
    assert not hasattr(full.conv1, "depthwise") and full.conv1.conv.kernel_size == (3, 3)
    shallow = MobileNetV1(variant="shallow")
    assert shallow.tap_names == ["conv0", "conv1", "conv2", "conv3", "conv4", "conv5", "conv6",
                                 "conv12", "conv13"]
    assert shallow(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


@pytest.mark.parametrize("padding", ["symmetric", "same"])
@pytest.mark.parametrize("activation", ["relu", "relu6"])
def test_bn_folding_preserves_outputs(padding, activation):
    torch.manual_seed(1)
    m = MobileNetV1(alpha=0.5, num_classes=7, padding=padding, activation=activation)
    # Non-trivial BN statistics: a few training-mode passes.
    m.train()
    with torch.no_grad():
        for _ in range(3):
            m(torch.randn(4, 3, 96, 96) * 2 + 0.3)
    m.eval()
    x = torch.randn(2, 3, 96, 96)
    ref = m(x)
    fuse_bn(m)
    assert not any(isinstance(mod, torch.nn.BatchNorm2d) for mod in m.modules())
    torch.testing.assert_close(m(x), ref, rtol=1e-4, atol=1e-4)


def test_same_padding_matches_tensorflow_rule():
    from mbv1.backbone.layers import SamePad2d

    pad = SamePad2d(3, 2)
    assert pad._pad(224) == (0, 1)  # even input: all extra padding bottom/right
    assert pad._pad(7) == (1, 1)
    assert SamePad2d(3, 1)._pad(10) == (1, 1)
    y = MobileNetV1(padding="same").features(torch.randn(1, 3, 512, 512), ["conv11", "conv13"])
    assert y["conv11"].shape[-1] == 32 and y["conv13"].shape[-1] == 16


def test_bad_arguments_name_allowed_values():
    with pytest.raises(ValueError, match="relu6"):
        MobileNetV1(activation="gelu")
    with pytest.raises(ValueError, match="shallow"):
        MobileNetV1(variant="deep")
    with pytest.raises(ValueError, match="available"):
        MobileNetV1().features(torch.randn(1, 3, 64, 64), ["conv14"])
