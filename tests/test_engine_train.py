"""The engine end to end, in process, on a tiny subset of the real digits (α=0.25, 32 px)."""

import csv

import pytest
import torch
import yaml

from mbv1.backbone.costs import count_costs
from mbv1.checkpoint import load_checkpoint
from mbv1.datasets.digits import write_digits
from mbv1.engine import load_config, resume_config, train
from mbv1.errors import MBV1Error
from mbv1.tasks import get_task

Classification = get_task("classification")
FAST = ["model.alpha=0.25", "model.resolution=32", "train.workers=0", "train.batch_size=10",
        "run.tensorboard=false", "train.optimizer=sgd", "train.lr=0.05", "train.schedule=cosine",
        "data.augment=light", "data.hflip=false"]



@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    write_digits(root / "d", size=16, per_class=4)  # 30 train / 10 val real digits
    return root / "d"


def tiny(data, project, *overrides, epochs=2):
    return load_config(Classification, None, [*FAST, f"run.project={project}", *overrides],
                       {"data.path": str(data), "train.epochs": epochs})


def test_run_folder_checkpoints_and_metrics(digits, tmp_path):
    cfg = tiny(digits, tmp_path / "runs")
    result = train(Classification, cfg, tty=False)
    run = tmp_path / "runs" / "classification" / "exp"
    assert result.run_dir == run and result.epochs_done == 2 and result.interrupted is None
    assert {p.name for p in run.iterdir()} >= {"config.yaml", "metrics.csv", "last.pt", "best.pt"}
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["task"] == "classification" and saved["model"]["alpha"] == 0.25
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"lr", "train_loss", "images_per_s", "val_top1", "val_top5", "val_loss"} <= set(rows[0])
    best = load_checkpoint(run / "best.pt", task="classification")
    meta = best["meta"]
    model = Classification(cfg).build_model({"labels": list("0123456789")})
    model.load_state_dict(best["model"])
    costs = count_costs(model, 32)
    assert (meta["num_params"], meta["mult_adds"]) == (costs.params, costs.mult_adds)
    assert meta["labels"] == [str(d) for d in range(10)] and meta["input_size"] == 32
    assert meta["mean"] == [0.5] * 3 and meta["activation"] == "relu6"
    assert meta["metrics"]["primary"] == "top1" and "val/" in meta["metrics"]["split"]
    assert meta["recipe"] and meta["source"].startswith("mbv1")
    assert [r["model"] for r in meta["paper"]] == ["0.25 MobileNet-224"]  # the nearest row
    assert meta["paper"][0]["comparable"] is False and "nearest" in meta["paper"][0]["note"]
    assert best["config"]["train"]["epochs"] == 2 and "optimizer" not in best
    last = load_checkpoint(run / "last.pt")
    assert {"optimizer", "scheduler", "scaler", "rng", "train_state"} <= set(last)
    assert (last["epoch"], last["step"], last["train_state"]["global_step"]) == (2, 0, 6)
    again = train(Classification, tiny(digits, tmp_path / "runs", epochs=1), tty=False)
    assert again.run_dir.name == "exp-2"
    same = train(Classification, tiny(digits, tmp_path / "runs", epochs=1), exist_ok=True,
                 tty=False)
    assert same.run_dir == run


def test_task_overfits_one_batch(digits):
    """The task contract alone (model + loss): ten real digits, one batch, 40 steps, loss ~0."""
    from torch.utils.data import DataLoader

    cfg = tiny(digits / "val", "unused", "data.val_path=" + str(digits / "val"),
               "data.augment=none", "model.dropout=0")
    task = Classification(cfg)
    data = task.build_datasets()
    loader = DataLoader(data.train, batch_size=10, collate_fn=task.collate)
    batch = task.to_device(next(iter(loader)))
    torch.manual_seed(0)
    model = task.build_model(data.info)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    for _ in range(40):
        out = task.forward_loss(model, batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert set(out) == {"loss"} and out["loss"].item() < 0.05
    assert (model(batch["image"]).argmax(1) == batch["label"]).all()


def test_finetune_new_head_freeze_and_norm_eval(digits, tmp_path, capsys):
    first = train(Classification, tiny(digits, tmp_path / "a", epochs=1), tty=False)
    init = load_checkpoint(first.run_dir / "best.pt")["model"]
    three = tmp_path / "three"
    for split in ("train", "val"):
        for d in "012":
            (three / split / d).mkdir(parents=True)
            for f in (digits / split / d).iterdir():
                (three / split / d / f.name).write_bytes(f.read_bytes())
    cfg = tiny(three, tmp_path / "b", f"model.init={first.run_dir}", "model.freeze=conv11",
               "model.norm_eval=true", "train.batch_size=3", epochs=2)
    result = train(Classification, cfg, tty=False)
    out = capsys.readouterr().out
    assert "skipped" in out and "fc.weight (10, 256) -> (3, 256)" in out
    tuned = result.model.state_dict()
    assert tuned["fc.weight"].shape == (3, 256)
    for k in ("conv0.conv.weight", "conv11.pointwise.conv.weight", "conv11.depthwise.bn.bias"):
        assert torch.equal(tuned[k], init[k]), k  # frozen
    k = "conv12.pointwise.conv.weight"
    assert not torch.equal(tuned[k], init[k])  # trained
    for k in ("conv3.pointwise.bn.running_mean", "conv13.pointwise.bn.running_var"):
        assert torch.equal(tuned[k], init[k]), k  # BatchNorm statistics frozen everywhere
    with pytest.raises(MBV1Error, match="did you mean 'conv11'"):
        train(Classification, tiny(digits, tmp_path / "c", "model.freeze=conv111"), tty=False)
    with pytest.raises(MBV1Error, match="does not fit this body"):
        train(Classification, tiny(three, tmp_path / "d", f"model.init={first.run_dir}",
                                   "model.alpha=0.5"), tty=False)


def test_ema_weights_are_evaluated_and_raw_kept_for_resume(digits, tmp_path):
    result = train(Classification, tiny(digits, tmp_path, "train.ema=true",
                                        "train.ema_decay=0.9"), tty=False)
    last = load_checkpoint(result.run_dir / "last.pt")
    raw = last["train_state"]["raw_model"]
    assert raw is not None and last["train_state"]["ema"]["updates"] == 6
    k = "conv13.pointwise.conv.weight"
    assert not torch.equal(raw[k], last["model"][k])
    assert torch.equal(result.model.state_dict()[k], last["model"][k])


def test_resume_allows_only_safe_changes(digits, tmp_path):
    result = train(Classification, tiny(digits, tmp_path, epochs=1), tty=False)
    cfg = resume_config(Classification, result.run_dir, {"train.epochs": 3})
    assert cfg.train.epochs == 3 and cfg.model.alpha == 0.25
    with pytest.raises(MBV1Error, match="cannot change train.lr when resuming"):
        resume_config(Classification, result.run_dir, None, ["train.lr=0.5"])
    with pytest.raises(MBV1Error, match="no training state"):
        resume_config(Classification, result.run_dir / "best.pt")
    resumed = train(Classification, cfg, resume=result.run_dir, tty=False)
    assert resumed.epochs_done == 3
    rows = list(csv.DictReader((result.run_dir / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]


def test_missing_data_and_sync_bn_on_cpu(digits, tmp_path):
    with pytest.raises(MBV1Error, match="pass --data"):
        train(Classification, load_config(Classification, None, [f"run.project={tmp_path}"]))
    with pytest.raises(MBV1Error, match="larger than the 30 training images"):
        train(Classification, tiny(digits, tmp_path, "train.batch_size=64"), tty=False)


def test_bad_image_in_a_run_is_skipped_by_name_or_stops_it(digits, tmp_path):
    """With a DataLoader worker process, run by the CLI in a child process: a native crash of
    a forked loader worker in this long-lived pytest process (seen on 3 of 5 full CI runs, here
    only, never alone) stays a test result, not a dead xdist worker."""
    import shutil

    from tests.test_cli import mbv1

    data = tmp_path / "d"
    shutil.copytree(digits, data)
    bad = sorted((data / "train" / "3").iterdir())[0]
    bad.write_bytes(b"broken")
    sets = [a for kv in [*FAST, "train.workers=1", "train.epochs=1"] for a in ("--set", kv)]
    r = mbv1("train", "classification", "--data", data, *sets, "--set",
             f"run.project={tmp_path / 'a'}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"skipping cannot read image {bad}" in " ".join(r.stderr.split())
    r = mbv1("train", "classification", "--data", data, *sets, "--set",
             f"run.project={tmp_path / 'b'}", "--set", "data.on_bad_image=fail", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    err = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and str(bad) in " ".join(r.stderr.split())  # one line, from the worker