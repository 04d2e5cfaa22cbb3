"""Where the face tasks' faces come from and how they are split: user folders into
extraction specs and whole-source hold-out (:mod:`mbv1.datasets.sources`, shared with detector
distillation), source balancing, progress lines."""

from __future__ import annotations

import hashlib
from pathlib import Path

from mbv1.datasets.sources import holdout, source_specs, split_fraction, split_note

__all__ = ["Joined", "balance_by_source", "holdout", "ExtractionProgress", "source_specs",
           "split_fraction", "split_note"]


def balance_by_source(records: list, indices: list[int]) -> list[int]:
    """Indices with each source's faces repeated to about the largest source's count, so a
    long video does not outweigh a few photos (an epoch then holds ~sources x largest)."""
    by: dict[str, list[int]] = {}
    for i in indices:
        by.setdefault(records[i].source, []).append(i)
    if len(by) < 2:
        return list(indices)
    most = max(len(v) for v in by.values())
    out: list[int] = []
    for v in by.values():
        reps = -(-most // len(v))  # ceil
        out += (v * reps)[: max(most, len(v))]
    return out


class Joined:
    """Two crop caches seen as one (train data + a separate val_path)."""

    def __init__(self, a, b):
        self.a, self.b = a, b
        self.records = a.records + b.records
        self.meta = a.meta
        digest = hashlib.sha1(str(Path(b.root).resolve()).encode()).hexdigest()[:10]
        self.root = Path(a.root) / f"with-val-{digest}"  # targets of the joined set live here
        self.root.mkdir(exist_ok=True)

    def __len__(self) -> int:
        return len(self.records)

    def crop(self, i: int):
        return self.a.crop(i) if i < len(self.a) else self.b.crop(i - len(self.a))

    def attr_crop(self, i: int):
        return self.a.attr_crop(i) if i < len(self.a) else self.b.attr_crop(i - len(self.a))


class ExtractionProgress:
    """Progress of face extraction (detect, align, crop) over all sources, with an estimate of
    the time left: a rich bar on stderr at a terminal, otherwise a line through ``log`` about
    every tenth of the work. Use as a context manager; pass the object as ``progress``."""

    def __init__(self, label: str, log, tty: bool | None = None):
        import sys

        self.label, self.log = label, log
        self.tty = sys.stderr.isatty() if tty is None else tty
        self._bar = self._task = None
        self._t0 = None
        self._next = 0.0

    def __enter__(self) -> ExtractionProgress:
        import time

        self._t0 = time.perf_counter()
        if self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("frames, {task.fields[faces]} faces"),
                                 TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=None, faces=0)
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, source: str, frames: int, total: int | None, faces: int) -> None:
        import time

        if self._bar is not None:
            self._bar.update(self._task, completed=frames, total=total, faces=faces)
            return
        done = frames / total if total else None
        if done is None:
            if frames == 1 or frames % 100 == 0:
                self.log(f"  {self.label}: {frames} frames, {faces} faces ({Path(source).name})")
            return
        if done + 1e-9 < self._next and frames != total:
            return
        self._next = done + 0.1
        elapsed = time.perf_counter() - self._t0
        eta = ("" if frames >= total else
               f", about {elapsed * (1 - done) / done:.0f} s left" if done > 0 else "")
        self.log(f"  {self.label}: {frames}/{total} frames ({100 * done:.0f}%), {faces} faces, "
                 f"{elapsed:.0f} s{eta}")


