"""Run folders that never overwrite: ``root/name``, else ``name-2``, ``name-3``... The one rule
for training runs (``runs/<task>/<name>``) and prediction runs (``runs/detect/predict-2``)."""

from __future__ import annotations

from pathlib import Path

from mbv1.errors import MBV1Error


def new_run_dir(project: str | Path, task: str, name: str, exist_ok: bool = False) -> Path:
    """Create and return ``project/task/name`` (or ``name-2``, ``name-3``...)."""
    if not name or "/" in name or name in (".", ".."):
        raise MBV1Error(f"run.name must be a plain folder name; got {name!r}")
    base = Path(project) / task
    base.mkdir(parents=True, exist_ok=True)
    candidate, n = base / name, 1
    while True:
        try:
            candidate.mkdir(exist_ok=exist_ok)
            return candidate
        except FileExistsError:
            n += 1
            candidate = base / f"{name}-{n}"
