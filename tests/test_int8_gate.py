"""int8 by default where it is as accurate as fp32: ``mbv1 detect``'s ``--precision auto``
quantizes the detector with NNCF on the embedded calibration frames, gates it on the held-out
ones and runs int8 only when it reproduces at least 99% of fp32's detections."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def face_ckpt():
    from tests.conftest import require_asset

    require_asset("face-api")
    from mbv1.detection.face_model import default_checkpoint

    return default_checkpoint()


@pytest.fixture()
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MBV1_EXPORT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_face_detector_passes_the_gate_and_runs_int8(face_ckpt, own_cache):
    from mbv1.detection.predictor import Detector

    notes = []
    det = Detector(face_ckpt, backend="openvino", precision="auto", warn=notes.append)
    assert det.precision == "int8" and not notes, notes
    gate = det.int8_gate
    assert gate["passed"] and gate["agreement"] >= 0.99 and gate["total"] >= 20
    record = json.loads(next(own_cache.glob("*int8*.gate.json")).read_text())
    assert record == gate
    fp32 = Detector(face_ckpt, backend="openvino", precision="fp32")
    assert fp32.precision == "fp32" and fp32.int8_gate is None
    from mbv1.datasets.images import load_rgb
    from tests.conftest import require_asset

    rgb = np.asarray(load_rgb(require_asset("face-api") / "package/demo/sample2.jpg"))
    a, b = det(rgb), fp32(rgb)
    assert len(a) == len(b) == 3
    assert np.abs(np.sort(a.scores) - np.sort(b.scores)).max() < 0.05
    # a second detector reads the verdict, it does not quantize again
    again = Detector(face_ckpt, backend="openvino", precision="auto")
    assert again.precision == "int8" and again.int8_gate == gate


def test_a_broken_calibration_is_refused_by_the_gate(face_ckpt, own_cache, monkeypatch):
    from mbv1.datasets import calibration
    from mbv1.detection.predictor import Detector

    real = calibration.real_frames()
    black = [np.zeros_like(f) for f in real.calibration[:8]]  # every activation range ~0
    monkeypatch.setattr(calibration, "real_frames",
                        lambda *a, **k: calibration.Frames(black, real.gate, "black frames"))
    notes = []
    det = Detector(face_ckpt, backend="openvino", precision="auto", warn=notes.append)
    assert det.precision == "fp32", det.int8_gate
    assert not det.int8_gate["passed"] and det.int8_gate["agreement"] < 0.99
    assert len(notes) == 1 and "int8 not taken" in notes[0] and "gate 99%" in notes[0]
    forced = Detector(face_ckpt, backend="openvino", precision="int8", warn=notes.append)
    assert forced.precision == "int8" and "under the gate" in notes[-1]


def test_precision_int8_needs_openvino(face_ckpt):
    from mbv1.detection.predictor import Detector
    from mbv1.errors import MBV1Error

    with pytest.raises(MBV1Error, match="runs on OpenVINO"):
        Detector(face_ckpt, backend="onnxruntime", precision="int8")
    with pytest.raises(MBV1Error, match="--precision"):
        Detector(face_ckpt, backend="openvino", precision="int4")
