"""Resume is exact: a real `mbv1 train` process is stopped by a real SIGTERM mid-training,
resumed with --resume, and ends with the weights and metrics of an uninterrupted run."""

import csv
import os
import signal
import subprocess
import sys

import pytest
import torch

from mbv1.checkpoint import load_checkpoint
from mbv1.datasets.digits import write_digits
from mbv1.engine import load_config, train
from mbv1.tasks import get_task

# Dropout, flips and random crops on: every RNG the run uses must come back on resume.
SETTINGS = ["model.alpha=0.25", "model.resolution=32", "train.batch_size=5", "train.workers=0",
            "train.threads=1", "train.deterministic=true", "train.optimizer=rmsprop",
            "train.lr=0.01", "train.ema=true", "train.ema_decay=0.9", "model.dropout=0.2",
            "data.augment=inception", "data.crop_scale=[0.5, 1.0]", "run.tensorboard=false",
            "run.log_every=1"]
EPOCHS = 3


def _rows(run):
    return list(csv.DictReader((run / "metrics.csv").open()))



def test_sigterm_then_resume_matches_an_uninterrupted_run(tmp_path):
    write_digits(tmp_path / "d", size=16, per_class=4)  # 30 train images: 6 steps per epoch
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "mbv1", "train", "classification", "--data", str(tmp_path / "d"),
           "--epochs", str(EPOCHS), "--name", "cut", *[a for s in SETTINGS for a in ("--set", s)]]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stdout:  # one line per step (run.log_every=1, no TTY)
        seen.append(line)
        if line.startswith("epoch 2/3 step 2/6"):
            proc.send_signal(signal.SIGTERM)  # a real signal, mid-epoch
            break
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 128 + signal.SIGTERM, "".join(seen) + out + err
    assert "interrupted by SIGTERM" in out and "--resume" in out
    run = tmp_path / "runs" / "classification" / "cut"
    cut = load_checkpoint(run / "last.pt")
    position = (cut["epoch"], cut["step"])
    assert position < (EPOCHS, 0), f"the run ended before the signal: {position}"

    r = subprocess.run([sys.executable, "-m", "mbv1", "train", "classification", "--resume",
                        str(run)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"resumed {run}" in r.stdout or "resumed runs/classification/cut" in r.stdout

    cfg = load_config(get_task("classification"), None,
                      [*SETTINGS, f"run.project={tmp_path / 'runs'}", "run.name=whole"],
                      {"data.path": str(tmp_path / "d"), "train.epochs": EPOCHS})
    train(get_task("classification"), cfg, tty=False)
    whole = tmp_path / "runs" / "classification" / "whole"

    a, b = load_checkpoint(run / "last.pt"), load_checkpoint(whole / "last.pt")
    assert (a["epoch"], a["train_state"]["global_step"]) == (EPOCHS, EPOCHS * 6)
    for key in ("model", "raw_model"):  # EMA weights and the raw training weights
        sa = a["model"] if key == "model" else a["train_state"][key]
        sb = b["model"] if key == "model" else b["train_state"][key]
        for k in sb:
            torch.testing.assert_close(sa[k], sb[k], rtol=1e-5, atol=1e-6, msg=f"{key}.{k}")
    ra, rb = _rows(run), _rows(whole)
    assert [r["epoch"] for r in ra] == [str(e) for e in range(1, EPOCHS + 1)]
    for x, y in zip(ra, rb):
        for col in ("train_loss", "val_top1", "val_loss", "lr"):
            assert float(x[col]) == pytest.approx(float(y[col]), rel=1e-4, abs=1e-6), (col, x, y)
