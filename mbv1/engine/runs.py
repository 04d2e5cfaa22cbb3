"""Run folders: ``runs/<task>/<name>/`` with config.yaml, metrics.csv, last.pt, best.pt.

A new run never overwrites an old one: ``exp`` becomes ``exp-2``, ``exp-3``... unless
``--exist-ok``. metrics.csv has one row per epoch (every loss part, lr, images/s, eval
metrics); it is rewritten atomically so a crash never leaves half a row.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from mbv1.checkpoint import atomic_write
from mbv1.run_dirs import new_run_dir  # noqa: F401  (the engine's run folders)

CONFIG, METRICS, LAST, BEST = "config.yaml", "metrics.csv", "last.pt", "best.pt"


def read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


class MetricsLog:
    """metrics.csv of a run: ``append(row)`` adds an epoch; new columns extend the header."""

    def __init__(self, path: Path):
        self.path = path
        self.rows = read_metrics(path)

    def truncate(self, epochs_done: int) -> None:
        """Drop rows of epochs not covered by the checkpoint being resumed."""
        kept = [r for r in self.rows if int(r.get("epoch") or 0) <= epochs_done]
        if len(kept) != len(self.rows):
            self.rows = kept
            self._write()

    def append(self, row: dict) -> None:
        self.rows.append({k: _fmt(v) for k, v in row.items()})
        self._write()

    def _write(self) -> None:
        columns: list[str] = []
        for r in self.rows:
            columns += [k for k in r if k not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write(self.path, buf.getvalue())


def _fmt(v):
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    return v


class TensorBoard:
    """Scalars to ``<run>/tensorboard`` when tensorboard is importable (silently off if not)."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                return
            self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def scalars(self, values: dict, step: int) -> None:
        if self.writer is None:
            return
        for k, v in values.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self.writer.add_scalar(k.replace("_", "/", 1), v, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
