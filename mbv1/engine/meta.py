"""The checkpoint meta the engine writes for every task (torchvision's weight metadata, timm's
preprocessing config): costs counted from the built model, preprocessing, labels, metrics with
their dataset split, the paper rows compared against, the recipe and the command."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from torch import nn

import mbv1
from mbv1.backbone.costs import count_costs


def recipe_line(cfg) -> str:
    """The recipe a run uses, in one line: ``run.recipe`` as a recipe file or ``--set`` gave
    it; a task's default recipe (which names itself there) with the files and overrides laid
    over it; else those files and overrides."""
    extra = ", ".join(cfg.source)
    if cfg.run.recipe and "run.recipe" not in cfg.explicit:  # the task's default, and changes
        return cfg.run.recipe + (f" (+ {extra})" if extra else "")
    return cfg.run.recipe or extra or f"mbv1 defaults of task {cfg.task}"


def build_meta(task, cfg, model: nn.Module, data, info: dict, init, command: str | None,
               run_dir: Path) -> dict:
    """Meta of a run's checkpoints; ``metrics`` is filled in after each evaluation."""
    costs = count_costs(model, cfg.model.resolution, forward=task.cost_forward())
    recipe = recipe_line(cfg)
    return {
        **info,
        "task": task.name,
        "num_params": costs.params,
        "mult_adds": costs.mult_adds,
        "alpha": cfg.model.alpha,
        "resolution": cfg.model.resolution,
        "input_size": cfg.model.resolution,
        "variant": cfg.model.variant,
        "activation": cfg.model.activation,
        "mean": list(cfg.data.mean),
        "std": list(cfg.data.std),
        "eval_crop": cfg.data.eval_crop,
        "labels": info.get("labels"),
        "train_images": len(data.train),
        "val_images": len(data.val) if data.val is not None else 0,
        "val_split": data.val_split,
        "metrics": {},
        "paper": task.paper_rows(info),
        "recipe": recipe,
        "command": command or shlex.join(["mbv1", *sys.argv[1:]]),
        "source": f"mbv1 {mbv1.__version__} train {task.name}, run {run_dir}",
        "init": init.source if init is not None else None,
    }


def header_line(tr) -> str:
    """The line a run starts with: data, body, costs, steps, device and run folder of trainer
    ``tr``."""
    from mbv1.backbone.pretrained import BODY_LABELS

    m, d, env, cfg = tr.meta, tr.data, tr.env, tr.cfg
    val = f"{len(d.val):,} eval images ({d.val_split})" if d.val is not None else "no eval split"
    where = f"{env.device}" + (f" x {env.world_size} processes" if env.distributed else "")
    return (f"mbv1 train {tr.task_cls.name}: {len(d.train):,} train images, {val}; "
            f"{BODY_LABELS.get(cfg.model.backbone, cfg.model.backbone)} "
            f"α={cfg.model.alpha} at {cfg.model.resolution} px: "
            f"{m['num_params'] / 1e6:.3f} M params, {m['mult_adds'] / 1e6:.1f} M mult-adds; "
            f"{tr.sampler.steps} steps/epoch of {cfg.train.batch_size} on {where}; "
            f"run {tr.run_dir}")
