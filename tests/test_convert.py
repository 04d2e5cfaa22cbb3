"""Weights in from peers, checked numerically against the peer's own model."""

import numpy as np
import pytest
import torch

from mbv1.backbone import MobileNetV1
from mbv1.backbone.convert import from_keras, from_tf_slim, from_timm
from mbv1.backbone.peers import convert_file, model_from_state
from mbv1.checkpoint import load_checkpoint
from mbv1.errors import MBV1Error
from tests.conftest import randomise_bn

timm = pytest.importorskip("timm")


@pytest.mark.parametrize("name", ["mobilenetv1_100", "mobilenetv1_125"])
def test_timm_equivalence(name):
    torch.manual_seed(0)
    ref = timm.create_model(name, pretrained=False).eval()
    randomise_bn(ref)
    state, kw = from_timm(ref.state_dict())
    ours = model_from_state(state, kw).eval()
    assert ours.config.alpha == {"mobilenetv1_100": 1.0, "mobilenetv1_125": 1.25}[name]
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


def _to_tf(model: MobileNetV1, prefix="MobilenetV1/"):
    """mbv1 → TF-slim arrays (HWIO, depthwise H,W,C,1), written independently of the converter."""
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    out = {}

    def bn(src, dst):
        for t, p in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                     ("moving_variance", "running_var")):
            out[f"{prefix}{dst}/BatchNorm/{t}"] = sd[f"{src}.bn.{p}"]

    out[prefix + "Conv2d_0/weights"] = sd["conv0.conv.weight"].transpose(2, 3, 1, 0)
    bn("conv0", "Conv2d_0")
    for i in range(1, 14):
        out[f"{prefix}Conv2d_{i}_depthwise/depthwise_weights"] = \
            sd[f"conv{i}.depthwise.conv.weight"].transpose(2, 3, 0, 1)
        bn(f"conv{i}.depthwise", f"Conv2d_{i}_depthwise")
        out[f"{prefix}Conv2d_{i}_pointwise/weights"] = sd[f"conv{i}.pointwise.conv.weight"].transpose(2, 3, 1, 0)
        bn(f"conv{i}.pointwise", f"Conv2d_{i}_pointwise")
    w = sd["fc.weight"]  # add TF-slim's background class 0
    out[prefix + "Logits/Conv2d_1c_1x1/weights"] = np.concatenate(
        [np.zeros((1, w.shape[1]), np.float32), w])[:, :, None, None].transpose(2, 3, 1, 0)
    out[prefix + "Logits/Conv2d_1c_1x1/biases"] = np.concatenate([[0.0], sd["fc.bias"]]).astype(np.float32)
    return out


def test_tf_slim_names_round_trip():
    torch.manual_seed(0)
    src = MobileNetV1(alpha=0.5, num_classes=12, padding="same").eval()
    randomise_bn(src)
    state, kw = from_tf_slim(_to_tf(src), drop_background=True)
    assert kw["padding"] == "same"
    ours = model_from_state(state, {**kw, "bn_eps": src.config.bn_eps}).eval()
    x = torch.randn(1, 3, 160, 160)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), src(x), rtol=1e-6, atol=1e-6)


def test_keras_names_round_trip():
    torch.manual_seed(0)
    src = MobileNetV1(alpha=0.25, num_classes=5, padding="same").eval()
    tf = _to_tf(src, prefix="")
    keras = {}
    rename = {"Conv2d_0": "conv1"} | {f"Conv2d_{i}_depthwise": f"conv_dw_{i}" for i in range(1, 14)} \
        | {f"Conv2d_{i}_pointwise": f"conv_pw_{i}" for i in range(1, 14)}
    for k, v in tf.items():
        scope, *rest = k.split("/")
        if scope == "Logits":
            continue
        if rest[0] == "BatchNorm":
            keras[f"{rename[scope]}_bn/{rest[1]}"] = v
        else:
            keras[f"{rename[scope]}/{'depthwise_kernel' if 'depthwise' in rest[0] else 'kernel'}"] = v
    keras["conv_preds/kernel"] = src.fc.weight.detach().numpy()[:, :, None, None].transpose(2, 3, 1, 0)
    keras["conv_preds/bias"] = src.fc.bias.detach().numpy()
    state, kw = from_keras(keras)
    ours = model_from_state(state, kw).eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), src(x), rtol=1e-6, atol=1e-6)


def test_convert_file_writes_checkpoint(tmp_path):
    ref = timm.create_model("mobilenetv1_100", pretrained=False, num_classes=3)
    torch.save(ref.state_dict(), tmp_path / "timm.pth")
    path, meta = convert_file(tmp_path / "timm.pth", "timm", tmp_path / "out.pt")
    ckpt = load_checkpoint(path, task="classification")
    assert ckpt["meta"]["num_classes"] == 3 and meta["num_params"] == sum(p.numel() for p in ref.parameters())


def test_foreign_file_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a zip")
    with pytest.raises(MBV1Error, match="cannot read weights"):
        convert_file(bad, "timm", tmp_path / "o.pt")
    torch.save({"foo": torch.zeros(1)}, tmp_path / "x.pth")
    with pytest.raises(MBV1Error, match="not a timm MobileNetV1"):
        convert_file(tmp_path / "x.pth", "timm", tmp_path / "o.pt")
