"""face-api's age/gender and expression nets in PyTorch against face-api's own JavaScript.

The reference (``tests/fixtures/face_api_reference.json``, made by
``tools/face_api_reference/reference.mjs`` on tfjs's CPU backend) holds one fixed 112x112 input
with the nets' outputs, and every face of the six demo photos with its box, crop and attributes.
Issue bound: age within 0.05 years, probabilities within 0.005. Measured: 1.1e-5 years and 5e-7.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require_asset

from mbv1.errors import MBV1Error
from mbv1.teachers import face_api_nets as N

FIXTURES = Path(__file__).parent / "fixtures"
REF = FIXTURES / "face_api_reference.json"
AGE_TOL, PROB_TOL = 0.05, 0.005  # the bounds


def _ref() -> dict:
    if not REF.exists():
        pytest.fail(f"{REF} missing: regenerate it with tools/face_api_reference (README there)")
    return json.loads(REF.read_text())


# ----------------------------------------------------------------------------- no assets


def test_crop_box_clips_then_floors_each_value():
    # face-api's Box.clipAtImageBorders + floor (the reference's sample1 face 0).
    box = (414.1156482696533, 354.7864163306452, 414.1156482696533 + 177.2929859161377,
           354.7864163306452 + 239.75290964076243)
    assert N.face_api_crop_box(box, 1920, 1280) == (414, 354, 177, 239)
    # x < 0 and past the right edge: clipped, then floored.
    assert N.face_api_crop_box((-3.5, 10.2, 50.9, 40.0), 40, 30) == (0, 10, 40, 19)
    assert N.face_api_crop_box((50, 10, 60, 20), 40, 30) is None  # entirely outside


def test_pad_to_square_centred_js_rounding():
    x = torch.ones(1, 3, 238, 177)  # diff 61: round(30.5) = 31 after (JS rounds .5 up), 30 before
    p = N.pad_to_square_centred(x)
    assert p.shape[-2:] == (238, 238)
    assert p[0, 0, 0, :30].sum() == 0 and p[0, 0, 0, 30] == 1
    assert p[0, 0, 0, 206] == 1 and p[0, 0, 0, 207:].sum() == 0
    wide = N.pad_to_square_centred(torch.ones(1, 3, 4, 7))  # diff 3: 2 after, 1 before
    assert wide[0, 0, :, 0].tolist() == [0, 1, 1, 1, 1, 0, 0]


def test_legacy_resize_f64_matches_the_float32_one_and_tf_formula():
    from mbv1.detection.preprocess import resize_bilinear_legacy

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (1, 3, 37, 37), generator=g).float()
    a = N.resize_bilinear_legacy_f64(x, 112, 112)
    b = resize_bilinear_legacy(x, 112, 112)
    assert torch.allclose(a, b, atol=1e-3)
    # Downscale by 2 exactly: the legacy kernel samples the top-left pixel of each 2x2 cell.
    y = torch.arange(16.0).view(1, 1, 4, 4)
    assert N.resize_bilinear_legacy_f64(y, 2, 2).flatten().tolist() == [0, 2, 8, 10]


def test_preprocess_crops_shapes_and_errors():
    crops = [np.zeros((30, 20, 3), np.uint8), np.full((112, 112, 3), 7, np.uint8)]
    x = N.preprocess_crops(crops)
    assert x.shape == (2, 3, 112, 112) and x.dtype == torch.float32
    assert float(x[1].mean()) == 7.0  # already 112: untouched
    assert N.preprocess_crops([]).shape == (0, 3, 112, 112)
    with pytest.raises(MBV1Error, match="face crop 0"):
        N.preprocess_crops([np.zeros((0, 5, 3), np.uint8)])


def test_face_api_box_scale_is_identity_on_the_long_side():
    sx, sy = N.face_api_box_scale(1280, 1920)  # reshaped 512 x 341
    assert sx == pytest.approx(1.0)
    assert sy == pytest.approx(512 / 341 * 1280 / 1920)


def test_nets_shapes_and_weight_mapping_errors(tmp_path):
    ag, ex = N.AgeGenderNet().eval(), N.FaceExpressionNet().eval()
    x = torch.rand(2, 3, 112, 112) * 255
    age, g = ag(x)
    assert age.shape == (2,) and g.shape == (2, 2)
    assert ex(x).shape == (2, 7)
    with pytest.raises(MBV1Error, match="112"):
        ex(torch.zeros(1, 112, 112, 3))
    # A manifest with a tensor the net does not have, or one that lacks a tensor, is refused.
    arrays = {"fc/weights": np.zeros((256, 7), np.float32), "fc/bias": np.zeros(7, np.float32)}
    with pytest.raises(MBV1Error, match="missing"):
        N._state_from_tfjs(arrays, ex, "features.", "m.json")
    arrays["dense9/conv0/filters"] = np.zeros((3, 3, 3, 32), np.float32)
    with pytest.raises(MBV1Error, match="no module"):
        N._state_from_tfjs(arrays, ex, "features.", "m.json")
    bad = {"fc/weights": np.zeros((7, 256), np.float32)}
    with pytest.raises(MBV1Error, match="shape"):
        N._state_from_tfjs(bad, ex, "features.", "m.json")


# ----------------------------------------------------------------------------- real weights


@pytest.fixture(scope="module")
def teacher():
    return N.load_attribute_teacher(require_asset("face-api"))


def _check(out: dict, i: int, age: float, p_male: float, expr, age_tol=AGE_TOL, p_tol=PROB_TOL):
    assert abs(float(out["age"][i]) - age) <= age_tol
    assert abs(float(out["gender"][i, 0]) - p_male) <= p_tol
    np.testing.assert_allclose(out["expression"][i].numpy(), expr, atol=p_tol, rtol=0)


@pytest.mark.assets
def test_fixed_input112_matches_face_api_js(teacher):
    att = _ref()["attribute_input"]
    x = np.load(FIXTURES / att["input112_npy"])
    with torch.no_grad():
        out = teacher(torch.from_numpy(x).permute(2, 0, 1)[None])
    r = att["outputs_from_input112"]
    # Measured 5.7e-6 years and 2e-8: far inside the bounds.
    _check(out, 0, r["age"], r["gender_softmax_male_female"][0], r["expressions_softmax"],
           age_tol=1e-3, p_tol=1e-5)
    assert abs(float(out["gender"][0].sum()) - 1) < 1e-6


@pytest.mark.assets
def test_crop_png_gives_the_exact_input112():
    from PIL import Image

    att = _ref()["attribute_input"]
    crop = np.asarray(Image.open(FIXTURES / att["crop_png"]).convert("RGB"))
    assert list(crop.shape) == att["crop_shape_hwc"]
    ours = N.preprocess_crops([crop])[0].permute(1, 2, 0).numpy()
    ref = np.load(FIXTURES / att["input112_npy"])
    np.testing.assert_allclose(ours, ref, atol=1e-3, rtol=0)  # measured: identical


@pytest.fixture(scope="module")
def photos(face_api_root):
    """(reference image record, Pillow-decoded RGB, reference faces) of the six demo photos."""
    from PIL import Image

    out = []
    for im in _ref()["images"]:
        rgb = np.array(Image.open(face_api_root / im["file"]).convert("RGB"))
        dec = im["decoders"]["pillow"]
        if hashlib.sha256(rgb.tobytes()).hexdigest() != dec["decoded_rgb_sha256"]:
            pytest.skip(f"this Pillow decodes {im['file']} to other pixels than the reference's; "
                        "regenerate the fixture with tools/face_api_reference")
        out.append((im, rgb, dec["faces"]))
    return out


def _expected(f: dict) -> tuple[float, float, list[float]]:
    p_male = f["genderProbability"] if f["gender"] == "male" else 1 - f["genderProbability"]
    return f["age"], p_male, [f["expressions"][k] for k in N.EXPRESSIONS]


@pytest.mark.assets
def test_all_22_demo_faces_from_the_js_crop_boxes(teacher, photos):
    n = 0
    for im, rgb, faces in photos:
        for f in faces:
            b = f["box"]
            xyxy = (b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"])
            c = f["crop_box"]
            assert N.face_api_crop_box(xyxy, im["width"], im["height"]) == (
                c["x"], c["y"], c["width"], c["height"])
        crops = N.crop_faces(rgb, [(f["box"]["x"], f["box"]["y"], f["box"]["x"] + f["box"]["width"],
                                    f["box"]["y"] + f["box"]["height"]) for f in faces])
        with torch.no_grad():
            out = teacher(N.preprocess_crops(crops))
        for i, f in enumerate(faces):
            _check(out, i, *_expected(f), age_tol=1e-3, p_tol=1e-5)  # measured 1.1e-5 / 5e-7
            n += 1
    assert n == 22


@pytest.mark.assets
def test_end_to_end_from_mbv1_face_detector(teacher, photos):
    """mbv1's SSD port finds the same faces; with face-api's un-padding (face_api_box_scale)
    its boxes give the very same crops, hence the same attributes, on all 22 faces."""
    from mbv1.detection.face_model import default_checkpoint
    from mbv1.detection.predictor import Detector

    if not default_checkpoint().exists():
        pytest.fail(f"{default_checkpoint()} missing: `mbv1 weights pull` converts it")
    det = Detector(default_checkpoint())
    n = 0
    for im, rgb, faces in photos:
        r = det(rgb)
        assert len(r) == len(faces)
        sx, sy = N.face_api_box_scale(*rgb.shape[:2])
        boxes = r.boxes_xyxy.astype(np.float64) * [sx, sy, sx, sy]
        with torch.no_grad():
            out = teacher(N.preprocess_crops(N.crop_faces(rgb, boxes)))
        for i, f in enumerate(faces):  # both in descending score order
            c = f["crop_box"]
            assert N.face_api_crop_box(boxes[i], im["width"], im["height"]) == (
                c["x"], c["y"], c["width"], c["height"])
            _check(out, i, *_expected(f), age_tol=1e-3, p_tol=1e-5)
            n += 1
    assert n == 22
