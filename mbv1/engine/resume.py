"""Interruption and resume: SIGTERM / SIGINT become a flag the loop checks after each step
(:class:`StopFlag`); ``--resume RUN_DIR`` rebuilds the run's config with the changes a resume
allows (:func:`resume_config`) from its last.pt (:func:`resume_checkpoint`)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from mbv1.checkpoint import load_checkpoint
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
