"""The contract between a task (one paper experiment) and the training engine.

A task says *what* to learn: its model, data, loss and metric. The engine
(:mod:`mbv1.engine`) says *how*: config, run folders, optimiser, AMP, EMA, resume, torchrun,
checkpoints, progress. A task subclasses :class:`Task`, fills in five methods and is listed in
``mbv1.tasks.TASKS``; docs/engine.md shows a complete minimal example.

Rules the engine relies on:

* Batches are dicts of tensors (and plain values) with ``batch["image"]`` a float tensor
  ``[N, 3, H, W]`` (N counts images for throughput); anything else (labels, variable-length
  boxes as lists) is the task's business: ``collate`` builds the dict.
* ``forward_loss`` returns ``{"loss": scalar tensor, **parts}``; every entry is logged per epoch
  (``train_<name>`` in metrics.csv). Return tensors, never ``.item()``: the engine syncs only at
  logging intervals. Heads return raw tensors in train and eval mode alike.
* ``evaluate`` returns :class:`Metrics`: named scalar values, which one is primary (best.pt is
  chosen on it) and which dataset split they were measured on.
* ``build_model`` returns a module whose MobileNetV1 body is reachable (the model itself or
  an attribute such as ``.backbone``) so that fine-tuning options (``model.init``,
  ``model.freeze``, ``model.norm_eval``) work on every task.
* ``info`` (from :class:`Datasets`) and :meth:`Task.meta` hold plain values only (labels,
  partition hash, ...): they are saved in every checkpoint and given back to ``build_model``
  when a checkpoint is loaded for evaluation or inference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import Dataset, default_collate


@dataclass
class Datasets:
    """What :meth:`Task.build_datasets` returns.

    Attributes:
        train: training set; items are dicts (or ``None`` for a skipped bad sample). It may
            define ``set_epoch(epoch)``: the engine calls it before every epoch (per-sample
            augmentation seeds derive from ``(train.seed, epoch, index)``).
        val: evaluation set (``None``: the run is never evaluated).
        info: task meta as plain values (``labels`` ...), saved in the checkpoint.
        val_split: name of the evaluation split as reported beside every number, e.g.
            ``"Stanford Dogs test (8,580 images)"``.
    """

    train: Dataset
    val: Dataset | None
    info: dict = field(default_factory=dict)
    val_split: str = "val"


@dataclass
class Metrics:
    """An evaluation: scalar ``values`` (percent for accuracies), the ``primary`` key, the
    dataset ``split`` they were measured on, and non-scalar ``details`` (plain values)."""

    values: dict[str, float]
    primary: str
    split: str
    higher_is_better: bool = True
    details: dict = field(default_factory=dict)

    @property
    def value(self) -> float:
        return self.values[self.primary]

    def better_than(self, other: float | None) -> bool:
        if other is None:
            return True
        return self.value > other if self.higher_is_better else self.value < other

    def to_dict(self) -> dict:
        """Checkpoint form: the values plus ``primary``, ``split`` and ``higher_is_better``."""
        return {**{k: float(v) for k, v in self.values.items()}, "primary": self.primary,
                "split": self.split, "higher_is_better": self.higher_is_better}


class FrozenTeacher(nn.Module):
    """Wraps a distillation teacher: always in eval mode, no gradients, outside DDP."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> FrozenTeacher:
        return super().train(False)

    @torch.no_grad()
    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


class Task:
    """Base class of a paper experiment. Subclasses set the class attributes and implement
    ``build_datasets``, ``build_model``, ``forward_loss`` and ``evaluate``.

    Class attributes:
        name: CLI name, kebab-case (``fine-grained``).
        sections: config sections added or replaced, ``{"data": MyDataConfig, "ssd": SSDConfig}``
            (dataclasses; a replacement should subclass the common one).
        defaults: nested values applied over the dataclass defaults before any recipe.
        primary_metric: key of :class:`Metrics` ``values`` that picks best.pt.
        paper_metric: the paper's metric name this task is compared on (``mbv1.paper``).

    The engine sets ``self.cfg`` (the resolved :class:`~mbv1.engine.config.Config`) and
    ``self.device`` before calling any method.
    """

    name: ClassVar[str] = ""
    sections: ClassVar[dict[str, type]] = {}
    defaults: ClassVar[dict] = {}
    primary_metric: ClassVar[str] = "loss"
    paper_metric: ClassVar[str | None] = None
    # Set by the engine before build_datasets: the run folder, and the checkpoint meta when
    # resuming (a task that derives state from data, like geolocation's partition, reuses it).
    run_dir: Any = None
    resume_meta: dict | None = None
    # False: the model brings its own pretrained body and model.init is not loaded into it
    takes_init: ClassVar[bool] = True

    def __init__(self, cfg: Any, device: torch.device | str = "cpu"):
        self.cfg = cfg
        self.device = torch.device(device)
        self.channels_last = bool(getattr(getattr(cfg, "train", None), "channels_last", False))

    # -- data ----------------------------------------------------------------------------
    def build_datasets(self) -> Datasets:
        """Training and evaluation sets from ``self.cfg.data``."""
        raise NotImplementedError

    def build_eval_dataset(self, info: dict) -> tuple[Dataset, str]:
        """The evaluation set for a trained model whose checkpoint meta is ``info`` (labels in
        the checkpoint's order); returns ``(dataset, split name)``. Override to avoid scanning
        the training set."""
        ds = self.build_datasets()
        if ds.val is None:
            from mbv1.errors import MBV1Error

            raise MBV1Error(f"task {self.name} found no evaluation split in {self.cfg.data.path}")
        return ds.val, ds.val_split

    def collate(self, items: list) -> dict | None:
        """Items -> batch dict. Default: drop ``None`` (skipped bad samples), then stack."""
        items = [x for x in items if x is not None]
        return default_collate(items) if items else None

    # -- model ---------------------------------------------------------------------------
    def build_model(self, info: dict) -> nn.Module:
        """The model (MobileNetV1 body + this task's head) for ``info`` (e.g. its labels)."""
        raise NotImplementedError

    def after_init(self, model: nn.Module, init) -> list[str]:
        """What the task carries over from ``model.init`` (an
        :class:`~mbv1.backbone.pretrained.InitWeights`) beyond the tensors of matching shape,
        after they are loaded; returns lines to print (default: nothing)."""
        return []

    def build_teacher(self) -> nn.Module | None:
        """A frozen teacher for distillation tasks (``None``: no teacher). The engine wraps it
        in :class:`FrozenTeacher`, moves it to the device and keeps it outside DDP."""
        return None

    def cost_forward(self) -> Callable[[nn.Module, torch.Tensor], Any] | None:
        """``forward(model, x)`` for cost counting when ``model(x)`` is not the full pass."""
        return None

    # -- training and evaluation ---------------------------------------------------------
    def forward_loss(self, model: nn.Module, batch: dict,
                     teacher: nn.Module | None = None) -> dict[str, torch.Tensor]:
        """``{"loss": scalar, **parts}`` for one batch already on ``self.device``."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, loader, teacher: nn.Module | None = None) -> Metrics:
        """Metrics of ``model`` (already in eval mode, on ``self.device``) over ``loader``."""
        raise NotImplementedError

    # -- reporting -----------------------------------------------------------------------
    def meta(self, datasets: Datasets) -> dict:
        """Task meta saved in every checkpoint (plain values); default ``datasets.info``."""
        return dict(datasets.info)

    def paper_rows(self, info: dict) -> list[dict]:
        """The paper rows this run is compared with, as dicts of :class:`mbv1.paper.Row`
        fields plus ``comparable`` (same dataset and label set) and ``note``."""
        return []

    @classmethod
    def cost_rows(cls) -> list:
        """The paper's cost figures for this task as :class:`mbv1.profile_row.ProfileRow`,
        counted from built modules, no data needed (``mbv1 profile``)."""
        return []

    def describe(self, metrics: Metrics, info: dict) -> list[str]:
        """Extra lines for ``mbv1 eval`` (per-class accuracy, confusions ...); rich markup ok."""
        return []

    # -- helpers -------------------------------------------------------------------------
    def to_device(self, batch: Any) -> Any:
        """Move every tensor of a (nested) batch to ``self.device``; ``image`` goes
        channels-last when ``train.channels_last`` is on."""
        if isinstance(batch, torch.Tensor):
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, dict):
            out = {k: self.to_device(v) for k, v in batch.items()}
            img = out.get("image")
            if self.channels_last and isinstance(img, torch.Tensor) and img.dim() == 4:
                out["image"] = img.contiguous(memory_format=torch.channels_last)
            return out
        if isinstance(batch, (list, tuple)):
            return type(batch)(self.to_device(v) for v in batch)
        return batch


def row_dict(row: Any, comparable: bool, note: str = "") -> dict:
    """A :class:`mbv1.paper.Row` as a checkpoint-safe dict with ``comparable`` and ``note``."""
    return {"table": row.table, "model": row.model, "metric": row.metric, "value": row.value,
            "mult_adds_m": row.mult_adds_m, "params_m": row.params_m, "alpha": row.alpha,
            "resolution": row.resolution, "variant": row.variant, "comparable": comparable,
            "note": note}
