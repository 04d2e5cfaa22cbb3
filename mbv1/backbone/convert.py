"""Weights in from peers: timm's ``mobilenetv1_100``, TF-slim / Keras MobileNetV1 names and
torchvision's ``mobilenet_v2``.

Each converter returns an mbv1 body state dict plus the :class:`BackboneConfig` keys that
reproduce the peer's numerics (activation, padding, BatchNorm epsilon; ``backbone`` where the
body is not MobileNetV1).
"""

from __future__ import annotations

import re

import numpy as np
import torch

from mbv1.errors import MBV1Error

_BN = ("weight", "bias", "running_mean", "running_var")
TF_BN = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
         "moving_variance": "running_var"}


def from_timm(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict]:
    """Map a timm ``mobilenetv1_*`` state dict onto mbv1 names.

    timm: ``conv_stem``/``bn1`` (stem), ``blocks.S.I.conv_dw|bn1|conv_pw|bn2`` in order
    (conv1..conv13), ``classifier``. timm builds it with ReLU6, symmetric padding, BN eps 1e-5.
    """
    if "conv_stem.weight" not in state:
        raise MBV1Error("not a timm MobileNetV1 state dict (no conv_stem.weight)")
    out = {"conv0.conv.weight": state["conv_stem.weight"]}
    out.update({f"conv0.bn.{k}": state[f"bn1.{k}"] for k in _BN})
    blocks = sorted({m.group(1) for k in state if (m := re.match(r"(blocks\.\d+\.\d+)\.", k))},
                    key=lambda b: tuple(int(x) for x in b.split(".")[1:]))
    for i, b in enumerate(blocks, start=1):
        out[f"conv{i}.depthwise.conv.weight"] = state[f"{b}.conv_dw.weight"]
        out[f"conv{i}.pointwise.conv.weight"] = state[f"{b}.conv_pw.weight"]
        for k in _BN:
            out[f"conv{i}.depthwise.bn.{k}"] = state[f"{b}.bn1.{k}"]
            out[f"conv{i}.pointwise.bn.{k}"] = state[f"{b}.bn2.{k}"]
    if "classifier.weight" in state:
        out["fc.weight"], out["fc.bias"] = state["classifier.weight"], state["classifier.bias"]
    _add_batch_counters(out)
    return out, {"activation": "relu6", "padding": "symmetric", "bn_eps": 1e-5}


def from_torchvision(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict]:
    """Map a torchvision ``mobilenet_v2`` state dict onto mbv1's :class:`MobileNetV2` names.

    torchvision: ``features.0`` (stem conv ``.0``, BN ``.1``), ``features.1..17`` (inverted
    residuals: ``conv.0`` expand, ``conv.1`` depthwise (each conv ``.0`` + BN ``.1``),
    ``conv.2`` projection conv, ``conv.3`` its BN; the first block has no expansion, so one
    index less), ``features.18`` (1x1 to 1280), ``classifier.1`` (FC). torchvision builds it
    with ReLU6, symmetric padding and BN eps 1e-5.
    """
    if "features.0.0.weight" not in state or "features.1.conv.0.0.weight" not in state:
        raise MBV1Error("not a torchvision MobileNetV2 state dict (no features.0.0.weight / "
                        "features.1.conv.0.0.weight)")
    out: dict[str, torch.Tensor] = {}

    def conv_bn(src_conv: str, src_bn: str, dst: str) -> None:
        out[f"{dst}.conv.weight"] = state[f"{src_conv}.weight"]
        out.update({f"{dst}.bn.{k}": state[f"{src_bn}.{k}"] for k in _BN})

    conv_bn("features.0.0", "features.0.1", "conv_stem")
    blocks = sorted({int(m.group(1)) for k in state
                     if (m := re.match(r"features\.(\d+)\.conv\.", k))})
    for i, f in enumerate(blocks):
        c = f"features.{f}.conv"
        if f"{c}.3.weight" in state:  # expand, depthwise, project
            conv_bn(f"{c}.0.0", f"{c}.0.1", f"block{i}.expand")
            conv_bn(f"{c}.1.0", f"{c}.1.1", f"block{i}.depthwise")
            conv_bn(f"{c}.2", f"{c}.3", f"block{i}.project")
        else:  # expansion 1: depthwise, project
            conv_bn(f"{c}.0.0", f"{c}.0.1", f"block{i}.depthwise")
            conv_bn(f"{c}.1", f"{c}.2", f"block{i}.project")
    head = blocks[-1] + 1
    if f"features.{head}.0.weight" not in state:
        raise MBV1Error(f"torchvision MobileNetV2 state dict without its last conv "
                        f"(features.{head}.0.weight)")
    conv_bn(f"features.{head}.0", f"features.{head}.1", "conv_head")
    if "classifier.1.weight" in state:
        out["fc.weight"], out["fc.bias"] = state["classifier.1.weight"], state["classifier.1.bias"]
    _add_batch_counters(out)
    return out, {"activation": "relu6", "padding": "symmetric", "bn_eps": 1e-5,
                 "backbone": "mobilenet_v2"}


def tf_conv(w: np.ndarray, depthwise: bool = False) -> torch.Tensor:
    """TF kernel layout → PyTorch: HWIO → OIHW; depthwise H,W,C,1 → C,1,H,W."""
    w = np.asarray(w, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(w.transpose(2, 3, 0, 1) if depthwise
                                                 else w.transpose(3, 2, 0, 1)))


def from_tf_slim(arrays: dict[str, np.ndarray], prefix: str = "MobilenetV1/",
                 drop_background: bool | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Map TF-slim names (``Conv2d_0``, ``Conv2d_N_depthwise|pointwise``, ``Logits``).

    TF-slim's ImageNet logits have 1001 classes (0 = background); ``drop_background`` removes
    class 0 (default: only when there are 1001 classes, keeping the 1000 ImageNet ones). TF-slim uses ReLU6, "SAME" padding and BN eps 1e-3.
    """
    def get(name):
        key = prefix + name
        if key not in arrays:
            raise MBV1Error(f"TF-slim weights lack {key!r}; is this a MobileNetV1 checkpoint?")
        return arrays[key]

    out = {"conv0.conv.weight": tf_conv(get("Conv2d_0/weights"))}
    out.update(_tf_bn(get, "Conv2d_0/BatchNorm", "conv0.bn"))
    i = 1
    while prefix + f"Conv2d_{i}_depthwise/depthwise_weights" in arrays:
        out[f"conv{i}.depthwise.conv.weight"] = tf_conv(get(f"Conv2d_{i}_depthwise/depthwise_weights"), True)
        out.update(_tf_bn(get, f"Conv2d_{i}_depthwise/BatchNorm", f"conv{i}.depthwise.bn"))
        out[f"conv{i}.pointwise.conv.weight"] = tf_conv(get(f"Conv2d_{i}_pointwise/weights"))
        out.update(_tf_bn(get, f"Conv2d_{i}_pointwise/BatchNorm", f"conv{i}.pointwise.bn"))
        i += 1
    logits = prefix + "Logits/Conv2d_1c_1x1/weights"
    if logits in arrays:
        w = tf_conv(arrays[logits])[:, :, 0, 0]
        b = torch.from_numpy(np.asarray(arrays[prefix + "Logits/Conv2d_1c_1x1/biases"], np.float32))
        if drop_background or (drop_background is None and w.shape[0] == 1001):
            w, b = w[1:], b[1:]
        out["fc.weight"], out["fc.bias"] = w.contiguous(), b.contiguous()
    _add_batch_counters(out)
    return out, {"activation": "relu6", "padding": "same", "bn_eps": 1e-3}


def from_keras(arrays: dict[str, np.ndarray]) -> tuple[dict[str, torch.Tensor], dict]:
    """Map Keras ``applications.MobileNet`` names (``conv1``, ``conv_dw_N``, ``conv_pw_N``,
    ``conv_preds``) given as ``layer/weight`` keys (e.g. ``conv_dw_1/depthwise_kernel``)."""
    a = {re.sub(r":0$", "", k.split("/", 1)[-1] if k.count("/") > 1 else k): v
         for k, v in arrays.items()}

    def get(name):
        if name not in a:
            raise MBV1Error(f"Keras weights lack {name!r}; is this a Keras MobileNet (v1)?")
        return a[name]

    def bn(layer, dst):
        return {f"{dst}.{TF_BN[k]}": torch.from_numpy(np.asarray(get(f"{layer}/{k}"), np.float32))
                for k in TF_BN}

    out = {"conv0.conv.weight": tf_conv(get("conv1/kernel")), **bn("conv1_bn", "conv0.bn")}
    i = 1
    while f"conv_dw_{i}/depthwise_kernel" in a:
        out[f"conv{i}.depthwise.conv.weight"] = tf_conv(get(f"conv_dw_{i}/depthwise_kernel"), True)
        out.update(bn(f"conv_dw_{i}_bn", f"conv{i}.depthwise.bn"))
        out[f"conv{i}.pointwise.conv.weight"] = tf_conv(get(f"conv_pw_{i}/kernel"))
        out.update(bn(f"conv_pw_{i}_bn", f"conv{i}.pointwise.bn"))
        i += 1
    if "conv_preds/kernel" in a:
        out["fc.weight"] = tf_conv(get("conv_preds/kernel"))[:, :, 0, 0].contiguous()
        out["fc.bias"] = torch.from_numpy(np.asarray(get("conv_preds/bias"), np.float32))
    _add_batch_counters(out)
    # Keras pads stride-2 convs explicitly with ((0,1),(0,1)): TF "SAME" at even sizes.
    return out, {"activation": "relu6", "padding": "same", "bn_eps": 1e-3}


def _tf_bn(get, scope: str, dst: str) -> dict[str, torch.Tensor]:
    out = {}
    for tf_name, torch_name in TF_BN.items():
        if tf_name == "gamma":
            try:
                v = get(f"{scope}/gamma")
            except MBV1Error:  # TF-slim may build BN with scale=False: γ = 1
                v = np.ones_like(get(f"{scope}/beta"))
        else:
            v = get(f"{scope}/{tf_name}")
        out[f"{dst}.{torch_name}"] = torch.from_numpy(np.asarray(v, np.float32))
    return out


def _add_batch_counters(state: dict[str, torch.Tensor]) -> None:
    for k in [k for k in state if k.endswith(".running_var")]:
        state[k[: -len("running_var")] + "num_batches_tracked"] = torch.tensor(0)


def infer_alpha_v2(state: dict[str, torch.Tensor]) -> float:
    """MobileNetV2's width multiplier from its last block (``_make_divisible(320·α, 8)``
    channels, exact for TF-slim's and torchvision's 0.35, 0.5, 0.75, 1.0, 1.3 and 1.4)."""
    last = max((int(m.group(1)) for k in state if (m := re.match(r"block(\d+)\.project\.", k))),
               default=None)
    if last is None:
        raise MBV1Error("no MobileNetV2 body weights (no blockN.project)")
    return state[f"block{last}.project.conv.weight"].shape[0] / 320


def infer_alpha(state: dict[str, torch.Tensor]) -> float:
    """Width multiplier from the widest layer's channel count (1024·α; the stem's 32·α is
    clamped at 8 channels for α < 0.25)."""
    last = max(int(k.split(".")[0][4:]) for k in state if re.match(r"conv\d+\.", k))
    key = f"conv{last}.pointwise.conv.weight"
    if key not in state:  # the full-conv variant
        key = f"conv{last}.conv.weight"
    return state[key].shape[0] / 1024
