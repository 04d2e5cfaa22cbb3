"""face-api's age/gender and expression nets as PyTorch modules: the face-attribute teachers.

Both come from npm ``@vladmandic/face-api@1.7.15`` (MIT), as TensorFlow.js weight manifests with
uint8-quantised kernels (read by :func:`mbv1.tfjs.load_tfjs_weights`):

* ``model/age_gender_model``: a *TinyXception* body (``xception/TinyXception.ts``, 2 main
  blocks) → 7x7x512 → avg pool → ``fc/age`` (512→1, raw age in years) and ``fc/gender``
  (512→2, softmax, index 0 = male).
* ``model/face_expression_model``: a *FaceFeatureExtractor* body
  (``faceFeatureExtractor/FaceFeatureExtractor.ts``: four dense blocks of depthwise separable
  convs) → 7x7x256 → avg pool → ``fc`` (256→7, softmax over :data:`EXPRESSIONS`).

Both take the same 112x112 input, built by face-api from a detection box
(``dom/extractFaceTensors.ts``, ``dom/NetInput.ts`` ``toBatchTensor(112, isCenterInputs=true)``):

1. clip the box at the image borders and floor x, y, width, height separately
   (:func:`face_api_crop_box`), slice the crop (no margin, no alignment);
2. zero-pad the shorter side to a square, centred, ``round(diff / 2)`` (JS ``Math.round``)
   after and the rest before (:func:`pad_to_square_centred`);
3. TensorFlow's legacy bilinear resize to 112x112 (``align_corners=False,
   half_pixel_centers=False``; :func:`mbv1.detection.preprocess.resize_bilinear_legacy`);
4. inside the nets: ``(x − [122.782, 117.001, 104.298]) / 255``.

The modules here take step 3's output (float RGB 0..255, ``[N, 3, 112, 112]``) and do step 4
themselves, as face-api's ``forwardInput`` does. TF ops are reproduced exactly: ``'same'``
padding (pads less before than after at stride 2), max pool 3x3/2 ``'same'`` (padding never
wins), avg pool 7x7/2 ``'valid'`` (a mean over the 7x7 map), ReLU where face-api has one and
nowhere else. Agreement with face-api's own JavaScript (tfjs CPU backend) is tested against
``tests/fixtures/face_api_reference.json`` (see ``tools/face_api_reference/README.md``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mbv1.errors import MBV1Error
from mbv1.teachers.face_api_preprocess import (  # noqa: F401  (part of this module's API)
    INPUT_SIZE,
    crop_faces,
    face_api_box_scale,
    face_api_crop_box,
    pad_to_square_centred,
    preprocess_crops,
    resize_bilinear_legacy_f64,
)

__all__ = [
    "AGE_GENDER_MANIFEST",
    "EXPRESSIONS",
    "EXPRESSION_MANIFEST",
    "GENDERS",
    "INPUT_SIZE",
    "MEAN_RGB",
    "AgeGenderNet",
    "FaceAttributeTeacher",
    "FaceExpressionNet",
    "age_gender_from_manifest",
    "crop_faces",
    "expression_from_manifest",
    "face_api_box_scale",
    "face_api_crop_box",
    "load_attribute_teacher",
    "pad_to_square_centred",
    "preprocess_crops",
    "resize_bilinear_legacy_f64",
]

MEAN_RGB = (122.782, 117.001, 104.298)
EXPRESSIONS = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
GENDERS = ("male", "female")
AGE_GENDER_MANIFEST = "package/model/age_gender_model-weights_manifest.json"
EXPRESSION_MANIFEST = "package/model/face_expression_model-weights_manifest.json"
SOURCE = "npm @vladmandic/face-api@1.7.15"


# --------------------------------------------------------------------------- TF-style layers


def _same_pad(size: int, k: int, s: int) -> tuple[int, int]:
    out = math.ceil(size / s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, k: int, s: int, value: float = 0.0) -> torch.Tensor:
    top, bottom = _same_pad(x.shape[-2], k, s)
    left, right = _same_pad(x.shape[-1], k, s)
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


class Conv(nn.Module):
    """``tf.conv2d(x, filters, stride, 'same') + bias`` (face-api ``ConvParams``)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int):
        super().__init__()
        self.k, self.stride = k, stride
        self.conv = nn.Conv2d(cin, cout, k, stride, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(_pad_same(x, self.k, self.stride))


class SepConv(nn.Module):
    """``tf.separableConv2d(x, depthwise 3x3, pointwise 1x1, stride, 'same') + bias``."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.stride = stride
        self.depthwise = nn.Conv2d(cin, cin, 3, stride, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(_pad_same(x, 3, self.stride)))


def _normalize(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(MEAN_RGB, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / 255.0


def _check_input(x: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise MBV1Error(f"face-api nets take [N, 3, 112, 112] RGB 0..255, got {tuple(x.shape)} "
                        "(use preprocess_crops())")


# --------------------------------------------------------------------------- TinyXception


class ReductionBlock(nn.Module):
    """``xception/TinyXception.ts`` reductionBlock: [ReLU] → sep0 → ReLU → sep1 → maxpool 3x3/2
    'same', plus a 1x1/2 ``expansion_conv`` of the block input."""

    def __init__(self, cin: int, cout: int, activate_input: bool = True):
        super().__init__()
        self.activate_input = activate_input
        self.separable_conv0 = SepConv(cin, cout)
        self.separable_conv1 = SepConv(cout, cout)
        self.expansion_conv = Conv(cin, cout, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(x) if self.activate_input else x
        out = self.separable_conv0(out)
        out = self.separable_conv1(F.relu(out))
        out = F.max_pool2d(_pad_same(out, 3, 2, value=-math.inf), 3, 2)
        return out + self.expansion_conv(x)


class MainBlock(nn.Module):
    """mainBlock: three (ReLU → separable conv) and the residual."""

    def __init__(self, c: int):
        super().__init__()
        self.separable_conv0 = SepConv(c, c)
        self.separable_conv1 = SepConv(c, c)
        self.separable_conv2 = SepConv(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.separable_conv0(F.relu(x))
        out = self.separable_conv1(F.relu(out))
        out = self.separable_conv2(F.relu(out))
        return out + x


class _Flow(nn.Module):
    pass


class TinyXception(nn.Module):
    """face-api's TinyXception body: ``[N, 3, 112, 112]`` normalised → ``[N, 512, 7, 7]``."""

    def __init__(self, num_main_blocks: int = 2):
        super().__init__()
        self.entry_flow = _Flow()
        self.entry_flow.conv_in = Conv(3, 32, 3, 2)
        self.entry_flow.reduction_block_0 = ReductionBlock(32, 64, activate_input=False)
        self.entry_flow.reduction_block_1 = ReductionBlock(64, 128)
        self.middle_flow = _Flow()
        for i in range(num_main_blocks):
            setattr(self.middle_flow, f"main_block_{i}", MainBlock(128))
        self.num_main_blocks = num_main_blocks
        self.exit_flow = _Flow()
        self.exit_flow.reduction_block = ReductionBlock(128, 256)
        self.exit_flow.separable_conv = SepConv(256, 512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.entry_flow
        out = F.relu(e.conv_in(x))
        out = e.reduction_block_0(out)
        out = e.reduction_block_1(out)
        for i in range(self.num_main_blocks):
            out = getattr(self.middle_flow, f"main_block_{i}")(out)
        out = self.exit_flow.reduction_block(out)
        return F.relu(self.exit_flow.separable_conv(out))


class _FCs(nn.Module):
    pass


class AgeGenderNet(nn.Module):
    """face-api ``AgeGenderNet``. ``forward(x)``: ``x`` float RGB 0..255 ``[N, 3, 112, 112]``
    (face-api's padded, resized crop) → ``(age [N] in years, gender logits [N, 2])``; softmax the
    logits for (p_male, p_female)."""

    def __init__(self):
        super().__init__()
        self.features = TinyXception(2)
        self.fc = _FCs()
        self.fc.age = nn.Linear(512, 1)
        self.fc.gender = nn.Linear(512, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_input(x)
        f = self.features(_normalize(x))
        pooled = F.avg_pool2d(f, 7, 2).flatten(1)  # tf.avgPool([7, 7], [2, 2], 'valid')
        return self.fc.age(pooled).squeeze(1), self.fc.gender(pooled)


# --------------------------------------------------------------------------- FaceFeatureExtractor


class DenseBlock4(nn.Module):
    """``faceFeatureExtractor/denseBlock.ts`` denseBlock4 (always scaling down by 2):
    out1 = ReLU(conv0 s2), out2 = sep(out1), out3 = sep(ReLU(out1+out2)),
    out4 = sep(ReLU(out1+out2+out3)), return ReLU(out1+out2+out3+out4)."""

    def __init__(self, cin: int, cout: int, first: bool = False):
        super().__init__()
        self.conv0 = Conv(cin, cout, 3, 2) if first else SepConv(cin, cout, 2)
        self.conv1 = SepConv(cout, cout)
        self.conv2 = SepConv(cout, cout)
        self.conv3 = SepConv(cout, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = F.relu(self.conv0(x))
        out2 = self.conv1(out1)
        out3 = self.conv2(F.relu(out1 + out2))
        out4 = self.conv3(F.relu(out1 + (out2 + out3)))
        return F.relu(out1 + (out2 + (out3 + out4)))


class FaceFeatureExtractor(nn.Module):
    """Four dense blocks 112→56→28→14→7 (32, 64, 128, 256 channels)."""

    def __init__(self):
        super().__init__()
        self.dense0 = DenseBlock4(3, 32, first=True)
        self.dense1 = DenseBlock4(32, 64)
        self.dense2 = DenseBlock4(64, 128)
        self.dense3 = DenseBlock4(128, 256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense3(self.dense2(self.dense1(self.dense0(x))))


class FaceExpressionNet(nn.Module):
    """face-api ``FaceExpressionNet``. ``forward(x)``: float RGB 0..255 ``[N, 3, 112, 112]`` →
    logits ``[N, 7]`` over :data:`EXPRESSIONS` (softmax for face-api's probabilities)."""

    def __init__(self):
        super().__init__()
        self.features = FaceFeatureExtractor()
        self.fc = nn.Linear(256, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x)
        f = self.features(_normalize(x))
        return self.fc(F.avg_pool2d(f, 7, 2).flatten(1))


# --------------------------------------------------------------------------- weights


def _state_from_tfjs(arrays: dict[str, np.ndarray], model: nn.Module, prefix: str,
                     where: str) -> dict[str, torch.Tensor]:
    """Map face-api tensor names onto ``model``'s state dict, every tensor used exactly once.

    ``a/b/filters`` (HWIO) → ``<prefix>a.b.conv.weight`` (OIHW); ``a/b/bias`` of a conv →
    ``.conv.bias``; ``depthwise_filter`` (3, 3, C, 1) → ``.depthwise.weight`` (C, 1, 3, 3);
    ``pointwise_filter`` (1, 1, C, O) → ``.pointwise.weight`` (O, C, 1, 1), the separable conv's
    ``bias`` → ``.pointwise.bias``; ``fc/.../weights`` (in, out) → ``fc....weight`` (out, in).
    """
    targets = model.state_dict()
    sd: dict[str, torch.Tensor] = {}
    for name, arr in arrays.items():
        scope, leaf = name.rsplit("/", 1)
        dotted = scope.replace("/", ".")
        if scope.split("/")[0] == "fc":
            key = f"{dotted}.{'weight' if leaf == 'weights' else 'bias'}"
            val = arr.T if leaf == "weights" else arr
        else:
            key_base = prefix + dotted
            if leaf == "filters":
                key, val = f"{key_base}.conv.weight", arr.transpose(3, 2, 0, 1)
            elif leaf == "depthwise_filter":
                key, val = f"{key_base}.depthwise.weight", arr.transpose(2, 3, 0, 1)
            elif leaf == "pointwise_filter":
                key, val = f"{key_base}.pointwise.weight", arr.transpose(3, 2, 0, 1)
            elif leaf == "bias":
                conv = f"{key_base}.conv.bias"
                key, val = (conv if conv in targets else f"{key_base}.pointwise.bias"), arr
            else:
                key, val = "", arr
        if key not in targets:
            raise MBV1Error(f"{where}: no module for weight '{name}': not a face-api "
                            f"{type(model).__name__} manifest")
        if tuple(val.shape) != tuple(targets[key].shape):
            raise MBV1Error(f"{where}: weight '{name}' has shape {list(arr.shape)}, "
                            f"{type(model).__name__} expects {list(targets[key].shape)}")
        sd[key] = torch.from_numpy(np.ascontiguousarray(val, dtype=np.float32))
    missing = sorted(set(targets) - set(sd))
    if missing:
        raise MBV1Error(f"{where}: {len(missing)} weights missing (e.g. '{missing[0]}'): not a "
                        f"complete face-api {type(model).__name__} manifest")
    return sd


def _from_manifest(model: nn.Module, manifest: str | Path) -> nn.Module:
    from mbv1.tfjs import load_tfjs_weights

    arrays = load_tfjs_weights(manifest)
    model.load_state_dict(_state_from_tfjs(arrays, model, "features.", str(manifest)))
    return model.eval()


def age_gender_from_manifest(manifest: str | Path) -> AgeGenderNet:
    """:class:`AgeGenderNet` with the weights of face-api's ``age_gender_model`` manifest."""
    return _from_manifest(AgeGenderNet(), manifest)


def expression_from_manifest(manifest: str | Path) -> FaceExpressionNet:
    """:class:`FaceExpressionNet` with the weights of ``face_expression_model``'s manifest."""
    return _from_manifest(FaceExpressionNet(), manifest)


class FaceAttributeTeacher(nn.Module):
    """Both face-api attribute nets behind one call.

    ``forward(x)`` with ``x`` float RGB 0..255 ``[N, 3, 112, 112]`` (:func:`preprocess_crops`)
    returns ``{"age": [N] years, "gender": [N, 2] (p_male, p_female), "expression": [N, 7]
    probabilities, "gender_logits", "expression_logits"}``.
    """

    input_size = INPUT_SIZE

    def __init__(self, age_gender: AgeGenderNet, expression: FaceExpressionNet):
        super().__init__()
        self.age_gender = age_gender
        self.expression = expression

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        age, g = self.age_gender(x)
        e = self.expression(x)
        return {"age": age, "gender": g.softmax(1), "expression": e.softmax(1),
                "gender_logits": g, "expression_logits": e}


def load_attribute_teacher(root: str | Path | None = None) -> FaceAttributeTeacher:
    """The two face-api nets from an unpacked face-api package ``root`` (default: the asset
    cache, ``mbv1 weights pull``)."""
    if root is None:
        from mbv1 import assets

        ag = assets.path("face-api", AGE_GENDER_MANIFEST)
        ex = assets.path("face-api", EXPRESSION_MANIFEST)
    else:
        ag, ex = Path(root) / AGE_GENDER_MANIFEST, Path(root) / EXPRESSION_MANIFEST
    return FaceAttributeTeacher(age_gender_from_manifest(ag), expression_from_manifest(ex)).eval()
