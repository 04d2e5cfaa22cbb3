"""Divergence (issue 23): a non-finite loss in any step, or non-finite weights or BatchNorm
statistics under a finite loss, stop the run with one line saying what to lower; no
checkpoint is ever written from a non-finite model; the checks add no host sync per step."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from mbv1.checkpoint import load_checkpoint
from mbv1.datasets.digits import write_digits
from mbv1.engine import guards, load_config, train
from mbv1.engine.meters import EpochMeters
from mbv1.errors import MBV1Error
from mbv1.tasks import get_task

Classification = get_task("classification")
FAST = ["--set", "run.tensorboard=false", "--set", "train.workers=0", "--set",
        "train.threads=1", "--set", "model.alpha=0.25", "--set", "model.resolution=32",
        "--set", "data.augment=light", "--set", "train.optimizer=sgd", "--batch-size", "4"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    write_digits(root / "d", size=16, per_class=4)  # 30 train: 7 steps of 4, fewer than 10
    return root / "d"


def run(mbv1_cli, digits, tmp_path, *args):
    project = tmp_path / "runs"
    code, out, err, _ = mbv1_cli("train", "classification", "--data", digits, "--set",
                                 f"run.project={project}", *FAST, *args)
    folder = project / "classification"
    return code, out, err, sorted(folder.iterdir()) if folder.is_dir() else []


def test_nan_loss_in_a_short_epoch_stops_the_run_and_saves_nothing(digits, tmp_path, mbv1_cli):
    """7 steps: fewer than the 10 between progress reads, so only the epoch check sees it."""
    code, out, err, runs = run(mbv1_cli, digits, tmp_path, "--epochs", "1", "--set",
                               "train.lr=1e30")
    assert code == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "training diverged in epoch 1" in last and "loss was nan or inf" in last
    assert "lower train.lr (now 1e+30" in last and "train.grad_clip" in last
    assert "Nothing was saved" in last and "loss nan" not in out
    assert runs == []  # no best.pt, no last.pt, no folder


def test_inf_batchnorm_statistics_under_a_finite_loss_are_caught(digits, tmp_path, mbv1_cli):
    """SGD at a huge learning rate: the loss stays finite, running_var overflows."""
    code, out, err, runs = run(mbv1_cli, digits, tmp_path, "--epochs", "1", "--set",
                               "train.lr=1e8")
    assert code == 2, out
    last = err.strip().splitlines()[-1]
    assert "training diverged in epoch 1" in last and "running_var (inf)" in last
    assert "lower train.lr (now 1e+08" in last and runs == []


def test_divergence_after_a_good_epoch_keeps_the_good_checkpoints(digits, tmp_path,
                                                                  monkeypatch):
    calls = {"n": 0}
    forward = Classification.forward_loss

    def nan_in_epoch_2(self, model, batch, teacher=None):
        out = forward(self, model, batch, teacher)
        calls["n"] += 1
        if calls["n"] > 7:  # epoch 2: the weights become NaN through the update
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(Classification, "forward_loss", nan_in_epoch_2)
    cfg = load_config(Classification, None,
                      [s for s in FAST[1::2] if "=" in s] + [f"run.project={tmp_path}"],
                      {"data.path": str(digits), "train.epochs": 2, "train.batch_size": 4})
    with pytest.raises(MBV1Error, match="diverged in epoch 2") as e:
        train(Classification, cfg, tty=False)
    assert "last.pt keeps the one before" in str(e.value)
    run_dir = tmp_path / "classification" / "exp"
    last = load_checkpoint(run_dir / "last.pt")
    assert last["epoch"] == 1 and last["step"] == 0
    for name in ("last.pt", "best.pt"):
        for k, t in load_checkpoint(run_dir / name)["model"].items():
            assert torch.isfinite(t).all(), (name, k)
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1"] and math.isfinite(float(rows[0]["train_loss"]))


def test_a_stop_signal_never_saves_non_finite_weights(digits, tmp_path, monkeypatch):
    """SIGTERM mid-epoch saves last.pt, but only after the same finite check."""
    from mbv1.engine import resume

    class Stopped(resume.StopFlag):
        def __enter__(self):
            super().__enter__()
            self.signum = 15
            return self

    monkeypatch.setattr("mbv1.engine.trainer.StopFlag", Stopped)
    cfg = load_config(Classification, None,
                      [s for s in FAST[1::2] if "=" in s] + [f"run.project={tmp_path}",
                                                             "train.lr=1e8"],
                      {"data.path": str(digits), "train.epochs": 1, "train.batch_size": 4})
    forward = Classification.forward_loss
    monkeypatch.setattr(Classification, "forward_loss",
                        lambda self, m, b, t=None: {"loss": forward(self, m, b, t)["loss"]
                                                    * float("inf")})
    with pytest.raises(MBV1Error, match="diverged"):
        train(Classification, cfg, tty=False)
    assert not (tmp_path / "classification" / "exp").exists()


def test_first_nonfinite_names_the_tensor():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    assert guards.first_nonfinite(model) is None
    model[1].running_var[2] = float("inf")
    assert guards.first_nonfinite(model) == "1.running_var (inf)"
    model[0].weight.data[0, 0, 0, 0] = float("nan")
    assert guards.first_nonfinite(None, model) == "0.weight (nan)"


def test_meters_count_non_finite_steps_without_reading_the_device(monkeypatch):
    m = EpochMeters(torch.device("cpu"))
    reads = []
    for name in ("item", "tolist", "__bool__", "__int__", "__float__"):
        real = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name,
                            lambda self, *a, _real=real, _n=name: reads.append(_n) or _real(self, *a))
    for loss in (1.0, float("nan"), 2.0, float("inf"), 3.0):
        m.add({"loss": torch.tensor(loss), "part": torch.tensor(loss / 2)}, 4, masked=False)
    assert reads == []  # nothing read per step: on CUDA no host sync
    monkeypatch.undo()
    assert int(m.bad) == 2 and m.trained == 5 and m.images == 20
    masked = EpochMeters(torch.device("cpu"))
    for loss in (1.0, float("nan"), 3.0):
        masked.add({"loss": torch.tensor(loss)}, 2, masked=True)  # float16's GradScaler
    assert masked.read() == (pytest.approx(8.0 / 6), 1)
    again = EpochMeters(torch.device("cpu"), masked.state())  # a mid-epoch resume
    assert again.read() == masked.read() and again.state() == masked.state()
