"""Writes (issue 23): a run folder that cannot be made, a full disk, a folder without
permission: one line naming the folder and why; metrics.csv never records an epoch whose
checkpoint was not written; a failed new run leaves no folder that looks like a run."""

from __future__ import annotations

import csv
import errno

import pytest
import torch

from mbv1.checkpoint import atomic_write, load_checkpoint, save_checkpoint
from mbv1.datasets.digits import write_digits
from mbv1.errors import WriteError
from mbv1.run_dirs import new_run_dir

FAST = ["--set", "run.tensorboard=false", "--set", "train.workers=0", "--set",
        "train.threads=1", "--set", "model.alpha=0.25", "--set", "model.resolution=32",
        "--set", "data.augment=light", "--batch-size", "10"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    write_digits(root / "d", size=16, per_class=4)
    return root / "d"


def train(mbv1_cli, digits, project, *args):
    return mbv1_cli("train", "classification", "--data", digits, "--set",
                    f"run.project={project}", *FAST, *args)


def last_line(code, err):
    assert code == 2 and "Traceback" not in err, err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("project", ["afile", "afile/runs"])
def test_run_project_under_a_regular_file(digits, tmp_path, mbv1_cli, project):
    (tmp_path / "afile").write_text("x")
    code, _, err, _ = train(mbv1_cli, digits, tmp_path / project, "--epochs", "1")
    line = last_line(code, err)
    assert "cannot create the run folder" in line
    assert f"{tmp_path / 'afile'} is a file, not a folder" in line and "run.project=" in line


def test_a_file_where_the_run_folder_would_be(tmp_path):
    (tmp_path / "classification").mkdir()
    (tmp_path / "classification" / "exp").write_text("x")
    with pytest.raises(WriteError, match="exp is a file, not a folder"):
        new_run_dir(tmp_path, "classification", "exp", exist_ok=True)
    assert new_run_dir(tmp_path, "classification", "exp").name == "exp-2"  # a new name


def _full_disk_after(monkeypatch, saves_ok: int, exc=None):
    """torch.save succeeds ``saves_ok`` times, then fails as on a full disk."""
    real, count = torch.save, {"n": 0}

    def save(obj, f, *a, **k):
        count["n"] += 1
        if count["n"] > saves_ok:
            raise exc or OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save)


def test_full_disk_at_the_first_checkpoint(digits, tmp_path, mbv1_cli, monkeypatch):
    _full_disk_after(monkeypatch, 0)
    code, out, err, _ = train(mbv1_cli, digits, tmp_path, "--epochs", "1")
    line = last_line(code, err)
    assert "cannot write" in line and "last.pt" in line and "the disk is full" in line
    assert "MB free on" in line and "free some space" in line
    assert not (tmp_path / "classification" / "exp").exists()  # nothing saved: no run


def test_full_disk_later_keeps_csv_and_checkpoint_in_step(digits, tmp_path, mbv1_cli,
                                                          monkeypatch):
    _full_disk_after(monkeypatch, 2)  # epoch 1's last.pt and best.pt
    code, out, err, _ = train(mbv1_cli, digits, tmp_path, "--epochs", "2")
    line = last_line(code, err)
    run = tmp_path / "classification" / "exp"
    assert "the disk is full" in line and f"--resume {run}" in line
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1"]  # epoch 2's checkpoint was not written
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]  # no half-written file


def test_torch_writer_error_says_disk(tmp_path, monkeypatch):
    _full_disk_after(monkeypatch, 0, RuntimeError("[enforce fail at inline_container.cc:672] . "
                                                  "unexpected pos 704 vs 598"))
    with pytest.raises(WriteError, match=r"cannot write .*x\.pt: the write failed; is the disk "
                                         r"full\? \(.* MB free on"):
        save_checkpoint(tmp_path / "x.pt", task="t", model={}, config={}, meta={})
    assert list(tmp_path.iterdir()) == []


def test_real_enospc_from_dev_full_reaches_the_message(monkeypatch, tmp_path):
    """torch.save into a file object reports the system's errno (into a file name it does
    not: 'unexpected pos')."""
    real_open = open

    def open_full(path, mode="r", *a, **k):
        return real_open("/dev/full", mode, *a, **k) if "w" in mode else real_open(path, mode,
                                                                                    *a, **k)
    monkeypatch.setattr("builtins.open", open_full)
    with pytest.raises(WriteError, match="the disk is full"):
        save_checkpoint(tmp_path / "x.pt", task="t", model={"w": torch.zeros(10_000)}, config={},
                        meta={})


@pytest.mark.parametrize("code,words", [(errno.EACCES, "permission denied in"),
                                        (errno.EROFS, "read-only file system")])
def test_permission_and_read_only(tmp_path, monkeypatch, code, words):
    import tempfile

    def refuse(*a, **k):
        raise OSError(code, "refused")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(WriteError, match=words) as e:
        atomic_write(tmp_path / "metrics.csv", lambda tmp: None)
    assert str(tmp_path / "metrics.csv") in str(e.value)


def test_failed_new_run_leaves_no_folder_but_an_existing_one_stays(digits, tmp_path, mbv1_cli):
    bad = tmp_path / "bad"
    for p in sorted((digits / "train").rglob("*.png")):
        q = bad / "train" / p.parent.name / p.name
        q.parent.mkdir(parents=True, exist_ok=True)
        q.write_bytes(b"x")
    code, _, err, _ = train(mbv1_cli, bad, tmp_path / "runs", "--epochs", "1", "--set",
                            f"data.val_path={digits / 'val'}")
    assert "trained on no image" in last_line(code, err)
    assert list((tmp_path / "runs" / "classification").iterdir()) == []
    keep = tmp_path / "runs" / "classification" / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    code, _, err, _ = train(mbv1_cli, bad, tmp_path / "runs", "--epochs", "1", "--name", "mine",
                            "--exist-ok", "--set", f"data.val_path={digits / 'val'}")
    assert code == 2 and (keep / "notes.txt").read_text() == "mine"
