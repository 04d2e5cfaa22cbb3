"""Evaluate a trained checkpoint on data (``mbv1 eval TASK CKPT --data DIR``), for any task.

The model is rebuilt from the checkpoint's own config and meta; the preprocessing recorded in
the meta (input size, mean/std, crop) is used, so converted peer weights evaluate with their
own normalisation.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from mbv1.checkpoint import load_checkpoint, load_model_state
from mbv1.child_signals import restoring_sigchld
from mbv1.engine.config import Config, config_from_dict
from mbv1.engine.distributed import resolve_device
from mbv1.engine.guards import CountingLoader
from mbv1.engine.task import FrozenTeacher, Metrics, Task


@dataclass
class Evaluation:
    metrics: Metrics
    meta: dict
    paper: list[dict]  # the task's paper rows for this checkpoint's setting
    task: Task
    checkpoint: Path


def checkpoint_config(task_cls: type[Task], ckpt: dict) -> Config:
    """The checkpoint's config, with the preprocessing of its meta (authoritative)."""
    cfg = config_from_dict(task_cls, ckpt.get("config") or {})
    meta = ckpt.get("meta") or {}
    for key, meta_key in (("data.mean", "mean"), ("data.std", "std"),
                          ("data.eval_crop", "eval_crop"), ("model.resolution", "input_size")):
        if meta.get(meta_key) is not None:
            cfg.set(key, meta[meta_key], explicit=False)
    return cfg


def load_trained(task_cls: type[Task], checkpoint: str | Path, options: dict | None = None,
                 overrides: list[str] = ()) -> tuple[Task, torch.nn.Module, dict]:
    """``(task, model in eval mode on its device, meta)`` of a checkpoint of ``task_cls``."""
    ckpt = load_checkpoint(checkpoint, task=task_cls.name)
    cfg = checkpoint_config(task_cls, ckpt)
    for key, value in (options or {}).items():
        if value is not None:
            cfg.set(key, value)
    cfg.apply_overrides(list(overrides))
    task = task_cls(cfg, resolve_device(cfg.train.device))
    meta = dict(ckpt.get("meta") or {})
    model = task.build_model(meta)
    load_model_state(model, ckpt["model"], str(checkpoint))
    model.to(task.device).eval()
    if task.channels_last:
        model.to(memory_format=torch.channels_last)
    return task, model, meta


def evaluate_checkpoint(task_cls: type[Task], checkpoint: str | Path, *,
                        options: dict | None = None, overrides: list[str] = ()) -> Evaluation:
    """Evaluate ``checkpoint`` on ``options["data.path"]`` (or the data it was trained on)."""
    task, model, meta = load_trained(task_cls, checkpoint, options, overrides)
    dataset, split = task.build_eval_dataset(meta)
    t = task.cfg.train
    from mbv1.devices import loader_workers

    loader = DataLoader(dataset, batch_size=t.batch_size, shuffle=False,
                        num_workers=loader_workers(t.workers),
                        collate_fn=task.collate, pin_memory=task.device.type == "cuda")
    teacher = task.build_teacher()
    if teacher is not None:
        teacher = FrozenTeacher(teacher).to(task.device)
    counted = CountingLoader(loader)
    with torch.no_grad(), restoring_sigchld():  # DataLoader workers' handler stays inside
        metrics = task.evaluate(model, counted, teacher)
    counted.check(split, lambda line: print(f"note: {line}", file=sys.stderr, flush=True))
    metrics.split = metrics.split if metrics.split not in ("", "val") else split
    info = {**meta, "num_classes": meta.get("num_classes") or len(meta.get("labels") or [])}
    return Evaluation(metrics, meta, task.paper_rows(info), task, Path(checkpoint))
