"""What the training loop checks so that a run never crashes on, nor saves, something wrong.

* **Batches BatchNorm cannot train on**: a BatchNorm layer in training mode needs more than one
  value per channel; a layer that sees a 1x1 map (SSD's last extra map at 300 px, the body's
  last layer below 64 px) needs two images per batch. :func:`bn_min_batch` finds the smallest
  batch from one probe pass; the engine refuses smaller batch sizes and drops a batch that
  skipped images leave smaller than that.
* **Non-finite values**: :func:`first_nonfinite` names the first weight or buffer (BatchNorm
  statistics included) that is NaN or infinite; no checkpoint is written from such a model.
* **Failed runs**: :func:`discard_run` removes a new run folder that holds no checkpoint, so a
  run that fails on bad input leaves nothing that looks like a run.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from mbv1.errors import MBV1Error

BN_TOO_SMALL = "Expected more than 1 value per channel when training"


def bn_min_batch(model: nn.Module, resolution: int, forward: Callable | None,
                 set_train_mode: Callable[[nn.Module], None]) -> tuple[int, str | None]:
    """``(smallest images per batch that every training-mode BatchNorm layer accepts, the
    first layer that needs more than one and what it sees)`` from one pass of a zero image at ``resolution``
    (eval mode, no gradients, nothing updated). ``set_train_mode(model)`` puts the model in the
    mode training uses (frozen layers and ``norm_eval`` keep BatchNorm in eval mode)."""
    was = {m: m.training for m in model.modules()}
    set_train_mode(model)
    training = {m for m in model.modules()
                if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training}
    names = {m: n for n, m in model.named_modules()}
    single: list[str] = []

    def hook(module, inputs):
        x = inputs[0]
        if x.dim() >= 2 and x.shape[0] and x.numel() // (x.shape[0] * x.shape[1]) <= 1:
            single.append(f"{names[module]} sees " + ("a 1x1 map" if x.dim() > 2 else
                                                      "one value per channel"))

    hooks = [m.register_forward_pre_hook(hook) for m in training]
    try:
        model.eval()
        p = next(model.parameters())
        x = torch.zeros(1, 3, resolution, resolution, dtype=p.dtype, device=p.device)
        with torch.no_grad():
            forward(model, x) if forward else model(x)
    except Exception:  # noqa: BLE001  a task whose probe pass differs: the loop still checks
        return 1, None
    finally:
        for h in hooks:
            h.remove()
        for m, mode in was.items():
            m.training = mode
    return (2, single[0]) if single else (1, None)


def small_batch_message(tr, n: int | None = None) -> str:
    """Trainer ``tr``'s batch size (or a batch of ``n`` per process) is below what its
    BatchNorm layers train on: which layer, and the smallest batch size that works."""
    t, world = tr.cfg.train, tr.env.world_size
    size = t.batch_size if n is None else n * world
    where = (f"BatchNorm layer {tr.bn_layer}" if tr.bn_layer else
             "a BatchNorm layer sees one value per channel")
    per = f" per process ({size} over {world})" if world > 1 else ""
    return (f"train.batch_size={size} is too small for this model: {where} at "
            f"{tr.cfg.model.resolution} px and cannot train on one image{per}; use "
            f"--batch-size {max(2, tr.min_batch) * world} or more")


def forward_loss(tr, batch: dict) -> dict:
    """``task.forward_loss`` of trainer ``tr``; a BatchNorm layer the probe did not see that
    gets one value per channel is the same one line as a refused batch size."""
    try:
        return tr.task.forward_loss(tr.ddp, batch, tr.teacher)
    except ValueError as e:
        if BN_TOO_SMALL not in str(e):
            raise
        raise MBV1Error(small_batch_message(tr, int(batch["image"].shape[0]))) from None


def check_finite(tr, m) -> None:
    """Once per epoch and before any save: the steps whose loss was not finite (``m``, the
    :class:`~mbv1.engine.meters.EpochMeters`), and trainer ``tr``'s weights and buffers
    (BatchNorm statistics too, which a huge learning rate can blow up under a finite loss).
    Every rank stops when one finds a problem."""
    from mbv1.engine import distributed as D

    bad, scaled = int(m.bad), tr.scaler.is_enabled()
    what = None
    if bad and (not scaled or bad >= m.trained):
        what = f"the training loss was nan or inf in {bad} of {m.trained} steps"
    elif bad:
        tr.progress.log(f"note: float16 AMP skipped {bad} steps with a non-finite loss (the "
                        "GradScaler lowering its scale)")
    name = first_nonfinite(tr.model, tr.ema.module if tr.ema is not None else None)
    if name and not what:
        what = f"{name} became non-finite (weights or BatchNorm statistics; the loss did not show it)"
    if D.any_rank(tr.env, what is not None):
        diverged(tr, what or "another process saw non-finite values")


def diverged(tr, what: str) -> None:
    """Stop trainer ``tr`` with one line: what became non-finite, what to lower, what is kept."""
    t = tr.cfg.train
    kept = (f"Nothing of this epoch was saved; {tr.run_dir.name}/last.pt keeps the one before"
            if (tr.run_dir / "last.pt").exists() else "Nothing was saved")
    clip = ("set train.grad_clip (e.g. 1.0)" if t.grad_clip <= 0
            else f"lower train.grad_clip (now {t.grad_clip:g})")
    raise MBV1Error(f"training diverged in epoch {tr.sampler.epoch + 1}: {what}; lower "
                    f"train.lr (now {t.lr:g}, e.g. {t.lr / 10:g}) or {clip}. {kept}")


@torch.no_grad()
def first_nonfinite(*modules: nn.Module | None) -> str | None:
    """The name (and value kind) of the first NaN or infinite floating-point weight or buffer
    of ``modules``; ``None`` when all are finite. One device sync when they are."""
    tensors = [(n, t) for m in modules if m is not None
               for n, t in m.state_dict().items() if t.is_floating_point()]
    if not tensors:
        return None
    flags = torch.stack([torch.isfinite(t).all() for _, t in tensors])
    if bool(flags.all()):
        return None
    name, t = tensors[int((~flags).nonzero()[0])]
    kind = "nan" if bool(torch.isnan(t).any()) else "inf"
    return f"{name} ({kind})"


def skipped_line(epoch: int, total: int, unreadable: int, batches: int, images: int,
                 need: int) -> str:
    """The epoch's one line on images it did not train on."""
    parts = []
    if unreadable:
        parts.append(f"skipped {unreadable} unreadable of {total:,} training images (named "
                     "above; data.on_bad_image=skip)")
    if batches:
        left = (f"a batch that skipping left with {images} image{'s' if images > 1 else ''}"
                if batches == 1 else f"{batches} batches that skipping left with fewer than "
                                     f"{need} images ({images} images)")
        parts.append(f"dropped {left}: BatchNorm trains on {need} or more")
    return f"epoch {epoch}: " + "; ".join(parts)


def discard_run(run_dir: Path) -> bool:
    """Remove ``run_dir`` when it holds no checkpoint (a run that failed before its first
    save); True when removed."""
    if not run_dir.is_dir() or any(run_dir.glob("*.pt")):
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return True


class CountingLoader:
    """A loader as a task's ``evaluate`` sees it, counting the images of the batches it yields
    (from shapes: no device sync) so that an evaluation over nothing is an error and one over
    part of its split says so. Attributes (``dataset`` ...) are the wrapped loader's."""

    def __init__(self, loader):
        self.loader = loader
        self.batches = self.images = 0
        self.countable = True  # batches in the engine's layout (a dict with "image")

    def __getattr__(self, name):
        return getattr(self.__dict__["loader"], name)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            self.batches += 1
            if batch is not None:
                image = batch.get("image") if isinstance(batch, dict) else None
                if image is None:
                    self.countable = False
                else:
                    self.images += int(image.shape[0])
            yield batch

    def check(self, split: str, log) -> None:
        """After the evaluation: an error when it read batches but no image; a line when it
        evaluated only part of ``split`` (unreadable images skipped)."""
        try:
            total = len(self.loader.dataset)
        except TypeError:
            return
        if not self.batches or not self.countable:  # not iterated by the task, or not countable
            return
        if not self.images:
            raise MBV1Error(f"the evaluation split ({split}) has no readable image: all {total:,} "
                            "were skipped (each is named above); fix or remove them, or set "
                            "data.val_path")
        if self.images < total:
            log(f"evaluated on {self.images:,} of the {total:,} images of {split} (skipped "
                f"{total - self.images:,} unreadable, named above)")
