"""Settings (issue 23): numbers are range-checked where they enter (``Config.set``), with the
allowed range in one line and no run folder; the device defaults to ``auto`` everywhere; no
command leaves PyTorch's DataLoader SIGCHLD handler behind."""

from __future__ import annotations

import dataclasses
import signal
import typing

import pytest
import torch
import typer

from mbv1 import devices
from mbv1.datasets.digits import write_digits
from mbv1.engine import bounds, load_config
from mbv1.engine.config import section_types
from mbv1.errors import MBV1Error
from mbv1.tasks import TASKS, get_task

FAST = ["--set", "run.tensorboard=false", "--set", "train.workers=0", "--set",
        "train.threads=1", "--set", "model.alpha=0.25", "--set", "model.resolution=32",
        "--set", "data.augment=light", "--epochs", "1", "--batch-size", "4"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    write_digits(root / "d", size=16, per_class=4)
    return root / "d"


@pytest.mark.parametrize("args,words", [
    (["--epochs", "0"], ["train.epochs must be at least 1; got 0"]),
    (["--epochs", "-1"], ["train.epochs must be at least 1; got -1"]),
    (["--batch-size", "0"], ["train.batch_size must be at least 1; got 0"]),
    (["--batch-size", "-3"], ["train.batch_size must be at least 1; got -3"]),
    (["--set", "train.lr=-0.1"], ["train.lr must be greater than 0; got -0.1"]),
    (["--set", "train.lr=.nan"], ["train.lr must be a finite number"]),
    (["--alpha", "0"], ["model.alpha must be in (0, 4]; got 0.0", "width multiplier"]),
    (["--resolution", "0"], ["model.resolution must be in [32, 4096]; got 0"]),
    (["--workers", "-1"], ["train.workers must be at least 0; got -1"]),
    (["--seed", "-1"], ["train.seed must be in [0, 4294967295]"]),
    (["--set", "data.val_split=1.5"], ["data.val_split must be in [0, 1); got 1.5"]),
    (["--set", "data.crop_scale=[1.0, 0.5]"], ["data.crop_scale must be [smallest, largest]"]),
    (["--set", "data.mean=[0.5, 2, 0.5]"], ["every item of data.mean must be in [0, 1]"]),
    (["--set", "train.momentum=1"], ["train.momentum must be in [0, 1)"]),
    (["--set", "train.eval_every=0"], ["train.eval_every must be at least 1"]),
], ids=lambda v: " ".join(v) if isinstance(v, list) and v and v[0].startswith("-") else None)
def test_out_of_range_settings_are_one_line_before_any_run(digits, tmp_path, mbv1_cli, args,
                                                           words):
    project = tmp_path / "runs"
    code, out, err, _ = mbv1_cli("train", "classification", "--data", digits, "--set",
                                 f"run.project={project}", *FAST, *args)
    assert code == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Traceback" not in err
    for w in words:
        assert w in last, (w, last)
    assert not project.exists()  # failed before creating a run folder


def test_task_sections_are_checked_too():
    with pytest.raises(MBV1Error, match=r"ssd.nms_iou must be in \[0, 1\]; got 2.0"):
        load_config(get_task("detection"), None, ["ssd.nms_iou=2"])
    with pytest.raises(MBV1Error, match="partition.max_level must be in"):
        load_config(get_task("geolocation"), None, ["partition.max_level=31"])


def _numeric_keys():
    for name in TASKS:
        cls = get_task(name)
        for section, tp in section_types(cls).items():
            hints = typing.get_type_hints(tp)
            for f in dataclasses.fields(tp):
                text = str(hints[f.name])
                if ("int" in text or "float" in text) and hints[f.name] is not bool:
                    yield name, f"{section}.{f.name}"


def test_every_numeric_key_of_every_task_has_a_range():
    missing = sorted({k for _, k in _numeric_keys()
                      if k not in bounds.BOUNDS and k not in bounds.UNBOUNDED})
    assert not missing, f"add these to mbv1.engine.bounds.BOUNDS (or UNBOUNDED, with why): {missing}"


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_default_is_within_its_range(task):
    cfg = load_config(get_task(task))  # checks every default and task default on the way in
    for key in bounds.BOUNDS:
        section, _, name = key.partition(".")
        if section in cfg.sections and hasattr(cfg.sections[section], name):
            bounds.check(key, cfg.get(key))


def test_resume_and_eval_of_a_finished_run(digits, tmp_path, mbv1_cli):
    project = tmp_path / "runs"
    code, _, err, _ = mbv1_cli("train", "classification", "--data", digits, "--set",
                               f"run.project={project}", *FAST)
    assert code == 0, err
    run = project / "classification" / "exp"
    code, _, err, _ = mbv1_cli("train", "classification", "--resume", run)
    assert code == 2 and "has already trained 1 epoch" in err and "--epochs N with N > 1" in err
    code, _, err, _ = mbv1_cli("eval", "classification", run, "--batch-size", "0")
    assert code == 2 and "train.batch_size must be at least 1; got 0" in err


# -- --device auto -----------------------------------------------------------------------------

@pytest.fixture
def fresh_announcement(monkeypatch):
    monkeypatch.setattr(devices, "_announced", False)


def test_auto_without_cuda_is_the_cpu_said_once(monkeypatch, capsys, fresh_announcement):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devices.resolve_device("auto") == torch.device("cpu")
    assert devices.resolve_device("auto") == torch.device("cpu")
    err = capsys.readouterr().err
    assert err.count("device: cpu, chosen by --device auto") == 1


def test_auto_with_cuda_is_the_gpu(monkeypatch, capsys, fresh_announcement):
    from mbv1.cli import common

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: None)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: "Mock GPU")
    assert devices.resolve_device("auto") == torch.device("cuda", 0)
    assert common.device_option("auto") == "cuda"  # what every command receives
    assert common.device_option("cpu") == "cpu"
    err = capsys.readouterr().err
    assert err.count("device: cuda:0 (Mock GPU), chosen by --device auto") == 1


def test_every_command_defaults_to_device_auto():
    from mbv1.cli.main import app
    from mbv1.engine.config import TrainConfig

    group = typer.main.get_command(app)
    found = {}

    def walk(cmd, prefix):
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{prefix} {name}".strip())
        for p in getattr(cmd, "params", []):
            if p.name == "device":
                found[prefix] = p.default

    walk(group, "")
    assert {"detect", "faces", "verify", "classify", "eval", "geolocate", "train"} <= set(found)
    assert {k: v for k, v in found.items() if k != "train"} == \
        dict.fromkeys(set(found) - {"train"}, "auto")
    # train: None keeps a resumed run's own device; a new run takes train.device
    assert found["train"] is None and TrainConfig().device == "auto"


# -- SIGCHLD ---------------------------------------------------------------------------------

def test_no_dataloader_sigchld_handler_outlives_a_command(digits, tmp_path, mbv1_cli):
    from mbv1.child_signals import restore_sigchld

    restore_sigchld(signal.SIG_DFL)
    before = signal.getsignal(signal.SIGCHLD)
    code, _, err, _ = mbv1_cli("train", "classification", "--data", digits, "--set",
                               f"run.project={tmp_path}", *FAST, "--workers", "1")
    assert code == 0, err
    assert signal.getsignal(signal.SIGCHLD) is before  # worker processes ran, handler gone
    code, _, err, _ = mbv1_cli("eval", "classification", tmp_path / "classification" / "exp",
                               "--data", digits, "--workers", "1")
    assert code == 0, err
    assert signal.getsignal(signal.SIGCHLD) is before
    from torch.utils.data._utils import signal_handling

    assert signal_handling._SIGCHLD_handler_set is False  # the next DataLoader installs its own
