"""Run folders that never overwrite: ``root/name``, else ``name-2``, ``name-3``... The one rule
for training runs (``runs/<task>/<name>``) and prediction runs (``runs/detect/predict-2``)."""

from __future__ import annotations

from pathlib import Path

from mbv1.errors import MBV1Error, write_error


def new_run_dir(project: str | Path, task: str, name: str, exist_ok: bool = False) -> Path:
    """Create and return ``project/task/name`` (or ``name-2``, ``name-3``...); a folder that
    cannot be made (a file in the way, no permission, a full disk) is one
    :class:`~mbv1.errors.WriteError` line naming it."""
    if not name or "/" in name or name in (".", ".."):
        raise MBV1Error(f"run.name must be a plain folder name; got {name!r}")
    base = Path(project) / task
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(base, e, "create the run folder") from None
    candidate, n = base / name, 1
    while True:
        try:
            candidate.mkdir(exist_ok=exist_ok)
            return candidate
        except FileExistsError:
            if exist_ok:  # a file of that name
                raise write_error(candidate, FileExistsError(), "create the run folder"
                                  ) from None
            n += 1
            candidate = base / f"{name}-{n}"
        except OSError as e:
            raise write_error(candidate, e, "create the run folder") from None
