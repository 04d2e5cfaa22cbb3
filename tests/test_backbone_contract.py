"""The generic body contract (after timm's): every body (MobileNetV1, MobileNetV2) at every
α × resolution builds, runs, trains, round-trips its state and folds its BatchNorm through the
same interface; MobileNetV1's own rules follow (MobileNetV2's: tests/test_mobilenet_v2.py)."""

import pytest
import torch

from mbv1.backbone import MobileNetV1, fuse_bn
from mbv1.backbone.bodies import BODIES, body_name, build_body

BODY_ALPHAS = {"mobilenet_v1": (1.0, 0.75, 0.5, 0.25), "mobilenet_v2": (1.0, 0.75, 0.5, 0.35)}
RESOLUTIONS = (224, 192, 160, 128)
CASES = [(b, a, r) for b, alphas in BODY_ALPHAS.items() for a in alphas for r in RESOLUTIONS]


def test_every_registered_body_is_tested():
    assert set(BODY_ALPHAS) == set(BODIES)


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {(b, a): build_body(b, alpha=a, num_classes=10) for b, alphas in BODY_ALPHAS.items()
            for a in alphas}


@pytest.mark.parametrize("body,alpha,resolution", CASES)
def test_contract(models, body, alpha, resolution):
    model = models[body, alpha]
    model.train()
    x = torch.randn(2, 3, resolution, resolution)
    feats = model.features(x, model.tap_names)
    assert list(feats) == model.tap_names  # every tap, in the body's order
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


@pytest.mark.parametrize("body", list(BODY_ALPHAS))
def test_interface(models, body):
    """What tasks rely on: names, the body/head split, the classifier swap, detection taps."""
    model = models[body, 1.0].eval()
    assert body_name(model) == body and model.config.backbone == body
    blocks = [name for name, _ in model.blocks()]
    assert blocks == [t for t in model.tap_names if t in blocks]  # blocks in tap order
    assert blocks[-1] == model.tap_names[-1]
    assert model.num_features == model.feature_info[-1].channels
    assert set(model.detection_taps) <= set(model.tap_names)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert list(model.features(x)) == [model.tap_names[-1]]  # default: the last layer
        torch.testing.assert_close(model.forward_head(model.forward_body(x)), model(x))
        body_out = model.forward_body(x)
        torch.testing.assert_close(model.features(x)[model.tap_names[-1]], body_out)
    with pytest.raises(ValueError, match="available"):
        model.features(x, ["conv99"])
    headless = build_body(body, alpha=0.5, num_classes=0)
    assert headless(x).shape == (1, headless.num_features)
    headless.reset_classifier(3)
    assert headless(x).shape == (1, 3) and headless.num_classes == 3
    with pytest.raises(ValueError, match="mobilenet_v1"):
        build_body("resnet50")


@pytest.mark.parametrize("body,alpha",
                         [(b, a) for b, alphas in BODY_ALPHAS.items() for a in alphas])
def test_state_dict_round_trip(models, body, alpha):
    a = models[body, alpha].eval()
    b = build_body(body, alpha=alpha, num_classes=10).eval()
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


@pytest.mark.parametrize("body", list(BODY_ALPHAS))
@pytest.mark.parametrize("padding", ["symmetric", "same"])
@pytest.mark.parametrize("activation", ["relu", "relu6"])
def test_bn_folding_preserves_outputs(body, padding, activation):
    torch.manual_seed(1)
    m = build_body(body, alpha=0.5, num_classes=7, padding=padding, activation=activation)
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
