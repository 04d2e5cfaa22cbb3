"""DDP: `torchrun --nproc_per_node=2 -m mbv1 train` on CPU (gloo) keeps the replicas identical
and computes what one process computes on the same global batch.

BatchNorm: with batch statistics, two half-batches normalise differently from one whole batch,
and torch's SyncBatchNorm runs on GPUs only. The comparison therefore freezes BatchNorm
statistics (``model.norm_eval=true``, the fine-tuning mode): the network is then a function of
each image alone, the loss is a mean over the batch, and DDP's averaged gradient of two
half-batches equals the single process's gradient of the whole batch. Dropout is off (masks
are drawn per process). Augmentation is on: it is seeded per image, not per process.
"""

import csv
import os
import subprocess
import sys

import pytest
import torch

from mbv1.checkpoint import load_checkpoint
from mbv1.datasets.digits import write_digits
from mbv1.engine import load_config, train
from mbv1.tasks import get_task

SETTINGS = ["model.alpha=0.25", "model.resolution=32", "train.batch_size=10", "train.workers=0",
            "train.threads=1", "train.optimizer=sgd", "train.lr=0.05", "train.schedule=cosine",
            "model.norm_eval=true", "model.dropout=0", "data.augment=inception",
            "data.crop_scale=[0.5, 1.0]", "run.tensorboard=false"]



def test_two_processes_match_one_on_the_same_global_batch(tmp_path):
    write_digits(tmp_path / "d", size=16, per_class=4)  # 30 train images: 3 global batches
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "mbv1", "train", "classification", "--data", str(tmp_path / "d"), "--epochs", "2",
           "--name", "ddp", *[a for s in SETTINGS for a in ("--set", s)]]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "x 2 processes" in r.stdout and r.stdout.count("mbv1 train classification:") == 1

    cfg = load_config(get_task("classification"), None,
                      [*SETTINGS, f"run.project={tmp_path / 'runs'}", "run.name=one"],
                      {"data.path": str(tmp_path / "d"), "train.epochs": 2})
    train(get_task("classification"), cfg, tty=False)

    ddp, one = (tmp_path / "runs" / "classification" / n for n in ("ddp", "one"))
    rows = list(csv.DictReader((ddp / "metrics.csv").open()))
    assert [float(x["replica_max_diff"]) for x in rows] == [0.0, 0.0]  # replicas identical
    a, b = load_checkpoint(ddp / "last.pt"), load_checkpoint(one / "last.pt")
    assert a["train_state"]["world_size"] == 2 and len(a["rng"]) == 2
    assert a["train_state"]["global_step"] == b["train_state"]["global_step"] == 6
    for k, v in b["model"].items():
        torch.testing.assert_close(a["model"][k], v, rtol=1e-4, atol=1e-5, msg=k)
    for x, y in zip(rows, csv.DictReader((one / "metrics.csv").open())):
        assert float(x["train_loss"]) == pytest.approx(float(y["train_loss"]), rel=1e-4)
        assert x["val_top1"] == y["val_top1"]
