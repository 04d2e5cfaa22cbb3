"""The real pretrained SSD-MobileNetV1 face detector of ``@vladmandic/face-api`` → mbv1.

The npm package ships the TF OD API ``ssd_mobilenet_v1`` graph trained on WIDER FACE as a
TensorFlow.js weight manifest (uint8-quantised). Pointwise and extra layers have BatchNorm
folded into a bias (``convolution_bn_offset``); depthwise layers keep their BatchNorm. We load
a folded bias into ``ConvBNAct`` as an identity BatchNorm (γ=1, μ=0, σ²=1−ε, β=bias), so the
same module class serves trained and converted models. The class predictor has 3 logits per
anchor (0 background, 1 face, 2 unused); the unused one is dropped (sigmoid scoring reads
logit 1 only, so the face score is unchanged).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mbv1.backbone.convert import TF_BN, tf_conv
from mbv1.detection.anchors import cxcywh_from_yxyx
from mbv1.detection.ssd import SSD, SSDConfig
from mbv1.errors import MBV1Error

MANIFEST = "package/model/ssd_mobilenetv1_model-weights_manifest.json"
INPUT_SIZE = 512
FACE_LABELS = ["face"]
# face-api feeds x/127.5 - 1 after zero-padding the image bottom/right to a square.
PREPROCESS = {"input_size": INPUT_SIZE, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
              "pad": "bottom-right", "resize": "tf-bilinear-legacy"}


def face_config() -> SSDConfig:
    return SSDConfig(num_classes=1, alpha=1.0, activation="relu6", padding="same", bn_eps=1e-3,
                     scoring="sigmoid")


def _folded(w: np.ndarray, bias: np.ndarray, dst: str, depthwise: bool = False) -> dict:
    eps = 1e-3
    n = bias.shape[0]
    return {f"{dst}.conv.weight": tf_conv(w, depthwise),
            f"{dst}.bn.weight": torch.ones(n), f"{dst}.bn.bias": torch.from_numpy(bias.astype(np.float32)),
            f"{dst}.bn.running_mean": torch.zeros(n),
            f"{dst}.bn.running_var": torch.full((n,), 1.0 - eps),
            f"{dst}.bn.num_batches_tracked": torch.tensor(0)}


def state_from_arrays(a: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """face-api tensors (TF names and layouts) → :class:`SSD` state dict."""
    def get(name):
        if name not in a:
            raise MBV1Error(f"face-api weights lack {name!r}: not the SSD-MobileNetV1 manifest")
        return a[name]

    mb = "MobilenetV1/"
    out = _folded(get(mb + "Conv2d_0_pointwise/weights"), get(mb + "Conv2d_0_pointwise/convolution_bn_offset"),
                  "backbone.conv0")
    for i in range(1, 14):
        dw = f"backbone.conv{i}.depthwise"
        out[f"{dw}.conv.weight"] = tf_conv(get(f"{mb}Conv2d_{i}_depthwise/depthwise_weights"), True)
        for tf_name, torch_name in TF_BN.items():
            out[f"{dw}.bn.{torch_name}"] = torch.from_numpy(
                get(f"{mb}Conv2d_{i}_depthwise/BatchNorm/{tf_name}").astype(np.float32))
        out[f"{dw}.bn.num_batches_tracked"] = torch.tensor(0)
        out.update(_folded(get(f"{mb}Conv2d_{i}_pointwise/weights"),
                           get(f"{mb}Conv2d_{i}_pointwise/convolution_bn_offset"),
                           f"backbone.conv{i}.pointwise"))
    for j in range(8):  # Prediction/Conv2d_0..7: extras[j // 2][j % 2]
        out.update(_folded(get(f"Prediction/Conv2d_{j}_pointwise/weights"),
                           get(f"Prediction/Conv2d_{j}_pointwise/convolution_bn_offset"),
                           f"extras.{j // 2}.{j % 2}"))
    for p in range(6):
        base = f"Prediction/BoxPredictor_{p}/"
        out[f"box_heads.{p}.weight"] = tf_conv(get(base + "BoxEncodingPredictor/weights"))
        out[f"box_heads.{p}.bias"] = torch.from_numpy(get(base + "BoxEncodingPredictor/biases").astype(np.float32))
        w = tf_conv(get(base + "ClassPredictor/weights"))  # [A·3, C, 1, 1]
        b = torch.from_numpy(get(base + "ClassPredictor/biases").astype(np.float32))
        keep = torch.tensor([i for i in range(w.shape[0]) if i % 3 != 2])  # drop the unused logit
        out[f"class_heads.{p}.weight"] = w[keep].contiguous()
        out[f"class_heads.{p}.bias"] = b[keep].contiguous()
    return out


def stored_anchors(a: dict[str, np.ndarray]) -> torch.Tensor:
    """The anchors the graph ships (``Output/extra_dim``), as ``[A, 4]`` (cy, cx, h, w)."""
    yxyx = torch.from_numpy(np.asarray(a["Output/extra_dim"], np.float32).reshape(-1, 4))
    return cxcywh_from_yxyx(yxyx)


DEFAULT_NAME = "face-ssd-mobilenetv1-512.pt"


def default_checkpoint() -> Path:
    """Where ``mbv1 weights pull`` writes the converted face detector."""
    from mbv1.assets import cache_dir

    return cache_dir() / "checkpoints" / DEFAULT_NAME


def convert_face_api(root: Path, out: Path | None = None) -> Path:
    """Convert the unpacked face-api package's SSD into an mbv1 detection checkpoint."""
    model, _ = load_face_detector(root)
    meta = {"labels": FACE_LABELS,
            "source": "npm @vladmandic/face-api@1.7.15 model/ssd_mobilenetv1_model (TF OD API "
                      "ssd_mobilenet_v1 trained on WIDER FACE), dequantized from uint8",
            "postprocess": {"conf": 0.5, "iou": 0.5, "max_det": 100}}
    return save_converted(model, PREPROCESS, meta, out or default_checkpoint())


def save_converted(model: SSD, preprocess: dict, meta: dict, out: Path) -> Path:
    """Save a converted pretrained SSD as an mbv1 detection checkpoint: its costs at its input
    size, preprocessing and SSD config in the meta (with ``meta``'s labels, source...)."""
    from mbv1.backbone.costs import count_costs
    from mbv1.checkpoint import save_checkpoint

    size = preprocess["input_size"]
    costs = count_costs(model, size)
    c = model.config
    meta = {"num_params": costs.params, "mult_adds": costs.mult_adds, "input_size": size,
            "mean": preprocess["mean"], "std": preprocess["std"], "preprocess": preprocess,
            "activation": c.activation, "metrics": {}, **meta, "ssd": c.to_dict()}
    config = {"model": {"backbone": c.backbone, "alpha": c.alpha, "activation": c.activation,
                        "padding": c.padding, "bn_eps": c.bn_eps, "resolution": size}}
    return save_checkpoint(out, task="detection", model=model, config=config, meta=meta)


def load_face_detector(root: Path) -> tuple[SSD, dict[str, np.ndarray]]:
    """Build the face detector from an unpacked face-api package root."""
    from mbv1.tfjs import load_tfjs_weights

    arrays = load_tfjs_weights(Path(root) / MANIFEST)
    model = SSD(face_config())
    model.load_state_dict(state_from_arrays(arrays))
    return model.eval(), arrays
