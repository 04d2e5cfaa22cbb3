"""Every registered task through the Task contract (docs/engine.md), as timm runs every model
through one test: build on tiny data in the task's real format → ``forward_loss`` → every
trainable parameter gets a gradient → ``evaluate`` returns :class:`Metrics` with the task's
primary metric → checkpoint meta round trip → the model rebuilt from the checkpoint gives the
same outputs. Then each task overfits a handful of samples."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from mbv1.checkpoint import save_checkpoint
from mbv1.engine.config import load_config
from mbv1.engine.evaluate import load_trained
from mbv1.engine.task import Metrics
from mbv1.tasks import TASKS, get_task
from tests.conftest import synthetic_face_cache

COMMON = ["model.alpha=0.25", "train.workers=0", "train.device=cpu", "run.tensorboard=false",
          "model.dropout=0", "train.channels_last=false"]


def _classification(root: Path):
    from mbv1.datasets.digits import write_digits

    write_digits(root / "digits", size=32, per_class=4, val_fraction=0.5)
    return root / "digits", ["model.resolution=32", "data.augment=none"]


def _fine_grained(root: Path):
    from mbv1.datasets.synthetic import write_stanford_dogs

    return (write_stanford_dogs(root / "dogs", train_per_class=2, test_per_class=1),
            ["model.resolution=32", "data.augment=none"])


def _detection(root: Path):
    from mbv1.datasets.synthetic_coco import make_synthetic_coco

    s = make_synthetic_coco(root / "coco", num_train=8, num_val=4, size=64, seed=1)
    return s.root, ["model.resolution=64", "data.augment=none"]


def _geolocation(root: Path):
    from mbv1.geo.synthetic import make_synthetic_geo

    s = make_synthetic_geo(root / "geo", num_train=24, num_test=8, size=32, seed=1)
    return s.root, ["model.resolution=32", "data.augment=none", "partition.t1=10",
                    "partition.t2=2"]


def _faces(root: Path):
    cache = synthetic_face_cache(root)
    return cache.root, ["model.resolution=32", "data.holdout=[dot, cid]", "data.hflip=false"]


TINY = {"classification": _classification, "fine-grained": _fine_grained,
        "detection": _detection, "geolocation": _geolocation, "face-attributes": _faces,
        "face-embeddings": _faces, "faces": _faces}


# Frameworks of a task through the same checks: "task/variant" -> (task, extra overrides).
VARIANTS = {"detection/faster-rcnn": ("detection", [
    "model.framework=faster-rcnn", "faster_rcnn.anchor_sizes=[16, 32]",
    "faster_rcnn.proposals=32", "faster_rcnn.rpn_depth=64"])}
CASES = sorted(TASKS) + sorted(VARIANTS)


def test_every_registered_task_has_tiny_data_here():
    assert set(TINY) == set(TASKS)


def _outputs(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [out[k] for k in sorted(out)]
    return [t for o in out for t in _outputs(o)]


def _built(name: str, root: Path):
    name, variant = VARIANTS.get(name, (name, []))
    cls = get_task(name)
    data, extra = TINY[name](root)
    cfg = load_config(cls, None, [*COMMON, *extra, *variant, f"run.project={root / 'runs'}"],
                      {"data.path": str(data)})
    task = cls(cfg, "cpu")
    datasets = task.build_datasets()
    info = task.meta(datasets)
    torch.manual_seed(0)
    model = task.build_model(info)
    return cls, cfg, task, datasets, info, model


def _batch(task, dataset, n: int = 4) -> dict:
    return task.to_device(task.collate([dataset[i] for i in range(min(n, len(dataset)))]))


@pytest.mark.parametrize("name", CASES)
def test_task_contract(name, tmp_path):
    cls, cfg, task, datasets, info, model = _built(name, tmp_path)
    # forward_loss: a finite scalar "loss" and tensor parts; every trainable parameter learns
    model.train()
    batch = _batch(task, datasets.train)
    assert batch["image"].dim() == 4 and batch["image"].dtype == torch.float32
    out = task.forward_loss(model, batch)
    assert out["loss"].dim() == 0 and torch.isfinite(out["loss"])
    assert all(isinstance(v, torch.Tensor) for v in out.values())
    out["loss"].backward()
    no_grad = [n for n, p in model.named_parameters()
               if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    assert not no_grad, f"{name}: parameters without a (finite) gradient: {no_grad[:5]}"
    # evaluate: Metrics with the task's primary metric, on a named split
    model.eval()
    loader = DataLoader(datasets.val, batch_size=4, collate_fn=task.collate)
    with torch.no_grad():
        metrics = task.evaluate(model, loader)
    assert isinstance(metrics, Metrics) and metrics.primary == cls.primary_metric
    assert metrics.primary in metrics.values and metrics.split
    # heads return the same kind of output in train and eval mode
    x = batch["image"][:2]
    with torch.no_grad():
        eval_out = model(x)
        model.train()
        train_out = model(x)
        model.eval()
    assert type(eval_out) is type(train_out)
    assert [t.shape for t in _outputs(eval_out)] == [t.shape for t in _outputs(train_out)]
    # checkpoint round trip: the meta comes back as saved, the rebuilt model computes the same
    path = save_checkpoint(tmp_path / "model.pt", task=cls.name, model=model, config=cfg.to_dict(),
                           meta=info)
    _, rebuilt, meta = load_trained(cls, path, {"train.device": "cpu"})
    assert meta == info and not rebuilt.training
    with torch.no_grad():
        for a, b in zip(_outputs(model(x)), _outputs(rebuilt(x)), strict=True):
            torch.testing.assert_close(a, b)


# Steps of Adam on one fixed batch, and the fraction of the first loss it must get under.
OVERFIT = {"classification": (60, 0.05), "fine-grained": (60, 0.05), "detection": (120, 0.25),
           "geolocation": (60, 0.05), "face-attributes": (80, 0.25), "face-embeddings": (80, 0.1),
           "faces": (80, 0.25), "detection/faster-rcnn": (120, 0.25)}


@pytest.mark.parametrize("name", CASES)
def test_task_overfits_a_handful_of_samples(name, tmp_path):
    """A handful of samples, one batch, driven towards zero loss: the model, loss and targets
    are wired so that learning can happen (a mislabelled or detached target cannot pass)."""
    _, _, task, datasets, _, model = _built(name, tmp_path)
    steps, fraction = OVERFIT[name]
    batch = _batch(task, datasets.train)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    losses = []
    for _ in range(steps):
        loss = task.forward_loss(model, batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < fraction * losses[0], f"{name}: loss {losses[0]:.4g} -> {losses[-1]:.4g}"
