"""The classification commands run for real (`python -m mbv1 ...`) on a tiny real-digits set:
data digits -> train -> eval -> classify -> report, and a user error."""

import json
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def mbv1(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mbv1", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=ENV, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    r = mbv1("data", "digits", "d", "--size", "16", "--per-class", "4", cwd=root)
    assert r.returncode == 0 and "wrote 30 train and 10 val digits" in r.stdout, r.stderr
    r = mbv1("train", "classification", "--data", "d", "--epochs", "1", "--alpha", "0.25",
             "--resolution", "32", "--batch-size", "10", "--workers", "0", "--name", "cli",
             "--set", "run.tensorboard=false", "--set", "train.threads=1", cwd=root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "done: epoch 1/1" in r.stdout and "runs/classification/cli/best.pt" in r.stdout
    return root


def test_eval_prints_metrics_split_and_paper_status(trained):
    r = mbv1("eval", "classification", "runs/classification/cli", "--data", "d", cwd=trained)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "top1" in out and "top5" in out and "split: val/ (10 images)" in out
    assert "Table 6" in out and "0.25 MobileNet-224" in out and "nearest" in out  # no 32 px row
    assert "per-class accuracy" in out
    r = mbv1("eval", "classification", "runs/classification/cli/best.pt", "--json", cwd=trained)
    ev = json.loads(r.stdout)
    assert ev["metrics"]["primary"] == "top1" and ev["metrics"]["split"].startswith("val/")
    assert len(ev["details"]["per_class_acc"]) == 10 and ev["num_params"] > 0


def test_classify_folder_and_glob_as_json(trained):
    r = mbv1("classify", "d/val", "d/train/3/*.png", "--weights", "runs/classification/cli",
             "--top-k", "3", "--json", cwd=trained)
    assert r.returncode == 0, r.stderr
    preds = json.loads(r.stdout)
    assert len(preds) == 13 and all(len(p["top"]) == 3 and p["error"] is None for p in preds)
    assert all(t["label"] in [str(d) for d in range(10)] for p in preds for t in p["top"])
    assert abs(sum(t["prob"] for t in preds[0]["top"]) - 1) < 1  # probabilities, sorted
    assert preds[0]["top"][0]["prob"] >= preds[0]["top"][1]["prob"]


def test_report_markdown(trained):
    r = mbv1("report", "--markdown", cwd=trained)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("| task | setting | metric | paper | mbv1 | diff")
    assert "| classification | α=0.25, 32 px | top1 @ epoch 1 |" in lines[2]
    assert "runs/classification/cli" in lines[2]


def test_user_errors_are_one_line(trained):
    r = mbv1("train", "classification", "--data", "d", "--set", "train.lrr=0.1", cwd=trained)
    assert r.returncode == 2 and "did you mean 'train.lr'" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
