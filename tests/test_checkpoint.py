"""Checkpoints: weights_only round trip, atomic writes, clear refusals."""

import pytest
import torch

from mbv1.backbone import MobileNetV1
from mbv1.checkpoint import load_checkpoint, load_model_state, save_checkpoint
from mbv1.errors import MBV1Error


def _save(tmp_path, task="classification", alpha=0.25):
    m = MobileNetV1(alpha=alpha, num_classes=4)
    meta = {"num_params": 1, "mult_adds": 2, "labels": ["a", "b", "c", "d"],
            "metrics": {"top1": {"value": 0.5, "split": "val"}}}
    return m, save_checkpoint(tmp_path / "m.pt", task=task, model=m, config={"model": {"alpha": alpha}},
                              meta=meta)


def test_round_trip_weights_only(tmp_path):
    m, path = _save(tmp_path)
    raw = torch.load(path, weights_only=True)  # plain values only
    assert raw["task"] == "classification"
    ckpt = load_checkpoint(path, task="classification")
    m2 = MobileNetV1(alpha=0.25, num_classes=4)
    load_model_state(m2, ckpt["model"])
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k])
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_folder_resolves_best_then_last(tmp_path):
    _, path = _save(tmp_path)
    path.rename(tmp_path / "last.pt")
    assert load_checkpoint(tmp_path)["task"] == "classification"


@pytest.mark.parametrize("content,match", [
    (None, "not found"), (b"", "empty"), (b"garbage bytes", "not a readable"),
])
def test_bad_files(tmp_path, content, match):
    p = tmp_path / "x.pt"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(MBV1Error, match=match):
        load_checkpoint(p)


def test_truncated_file(tmp_path):
    _, path = _save(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MBV1Error, match="not a readable"):
        load_checkpoint(path)


def test_foreign_and_wrong_task(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "f.pt")
    with pytest.raises(MBV1Error, match="not an mbv1 checkpoint"):
        load_checkpoint(tmp_path / "f.pt")
    _, path = _save(tmp_path, task="geolocation")
    with pytest.raises(MBV1Error, match="'geolocation' checkpoint, but this command needs a 'detection'"):
        load_checkpoint(path, task="detection")


def test_shape_mismatch_is_one_line(tmp_path):
    _, path = _save(tmp_path, alpha=0.25)
    with pytest.raises(MBV1Error, match="shape mismatches") as e:
        load_model_state(MobileNetV1(alpha=0.5, num_classes=4), load_checkpoint(path)["model"])
    assert "\n" not in str(e.value)


def test_interrupted_write_keeps_old_file(tmp_path, monkeypatch):
    m, path = _save(tmp_path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, task="classification", model=m, config={}, meta={})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
