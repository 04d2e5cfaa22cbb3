"""Interruption and resume: SIGTERM / SIGINT become a flag the loop checks after each step
(:class:`StopFlag`); ``--resume RUN_DIR`` rebuilds the run's config with the changes a resume
allows (:func:`resume_config`) from its last.pt (:func:`resume_checkpoint`)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from mbv1 import seeding
from mbv1.checkpoint import load_checkpoint, load_model_state
from mbv1.engine import runs
from mbv1.engine.config import RESUME_MUTABLE, Config, config_from_dict
from mbv1.errors import MBV1Error


class StopFlag:
    """Turns SIGTERM / SIGINT into a flag checked after every step (main thread only)."""

    def __init__(self):
        self.signum: int | None = None
        self._old: dict = {}

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGTERM, signal.SIGINT):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop now, without saving
        self.signum = signum

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)


def resume_config(task_cls, run_dir: str | Path, options: dict | None = None,
                  overrides: list[str] = ()) -> Config:
    """The config of the run being resumed, with the changes a resume allows
    (``config.RESUME_MUTABLE``: epochs, workers, device, data paths, logging)."""
    ckpt = resume_checkpoint(task_cls, run_dir)
    cfg = config_from_dict(task_cls, ckpt["config"], f"{run_dir}/last.pt")
    before = cfg.to_dict()
    for key, value in (options or {}).items():
        if value is not None:
            cfg.set(key, value)
    cfg.apply_overrides(list(overrides))
    after = cfg.to_dict()
    changed = [f"{s}.{k}" for s in after if isinstance(after[s], dict)
               for k in after[s] if after[s][k] != before[s][k]]
    frozen = [k for k in changed if k not in RESUME_MUTABLE]
    if frozen:
        raise MBV1Error(f"cannot change {', '.join(frozen)} when resuming (the continuation would "
                        f"not be exact); a resume may change {', '.join(sorted(RESUME_MUTABLE))}. "
                        "Start a new run with model.init=RUN_DIR instead")
    return cfg


def resume_checkpoint(task_cls, run_dir) -> dict:
    """The last.pt of a run folder (or that file), with its training state."""
    path = Path(run_dir)
    path = path if path.is_file() else path / runs.LAST
    ckpt = load_checkpoint(path, task=task_cls.name)
    if "optimizer" not in ckpt:
        raise MBV1Error(f"{path} holds no training state (a best.pt?): resume from the run "
                        "folder or its last.pt")
    return ckpt


def restore(tr) -> None:
    """Put a :class:`~mbv1.engine.trainer.Trainer` where its resumed last.pt left off: model,
    optimiser, schedule, scaler, EMA, position, best metric, partial-epoch meters, RNGs."""
    ck, ts = tr.ckpt, tr.ckpt["train_state"]
    load_model_state(tr.model, ts.get("raw_model") or ck["model"], "resumed checkpoint")
    tr.optimizer.load_state_dict(ck["optimizer"])
    tr.scheduler.load_state_dict(ck["scheduler"])
    if tr.scaler.is_enabled() and ck.get("scaler"):
        tr.scaler.load_state_dict(ck["scaler"])
    if tr.ema is not None:
        tr.ema.load_state_dict(ts["ema"], ck["model"])
    tr.epoch, tr.start_step = int(ck["epoch"]), int(ck["step"])
    tr.global_step = int(ts["global_step"])
    tr.best, tr.best_epoch = ts.get("best"), ts.get("best_epoch")
    tr.metrics = dict((ck.get("meta") or {}).get("metrics") or {})
    tr.meters = ts.get("meters") if tr.start_step else None
    if tr.epoch >= tr.cfg.train.epochs:
        n = tr.epoch
        raise MBV1Error(f"{tr.run_dir} has already trained {n} epoch{'s' * (n != 1)} "
                        f"(train.epochs={tr.cfg.train.epochs}): to train it further pass "
                        f"--epochs N with N > {n}")
    rng = ck["rng"]
    if len(rng) == tr.env.world_size:
        seeding.set_rng_state(rng[tr.env.rank])
    else:
        tr.progress.log(f"note: resumed on {tr.env.world_size} processes, saved on "
                        f"{len(rng)}: dropout RNG streams restart (data order is exact)")
        seeding.seed_everything(tr.cfg.train.seed + tr.global_step, tr.env.rank)
    if tr.log is not None:
        tr.log.truncate(tr.epoch)
    where = f"epoch {tr.epoch + 1} step {tr.start_step}" if tr.start_step else \
        f"the start of epoch {tr.epoch + 1}"
    tr.progress.log(f"resumed {tr.run_dir} at {where} (global step {tr.global_step})")
