"""Where the face tasks' faces come from and how they are split: user folders into
extraction specs, whole-source hold-out, source balancing, progress lines."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from mbv1.errors import MBV1Error

__all__ = ["Joined", "balance_by_source", "holdout", "progress_printer", "source_specs",
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


def holdout(sources: list[str], names: list[str]) -> tuple[list[str], list[str]]:
    val = [s for s in sources if s in names or Path(s).name in names]
    unknown = [n for n in names if not any(s == n or Path(s).name == n for s in sources)]
    if unknown:
        raise MBV1Error(f"data.holdout names unknown sources {unknown[:3]}; sources are: "
                        f"{', '.join(Path(s).name for s in sources[:8])}"
                        + (" ..." if len(sources) > 8 else ""))
    return [s for s in sources if s not in val], val


def split_fraction(sources: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Hold out ``fraction`` of the sources (at least one when there are two or more)."""
    if len(sources) < 2 or fraction <= 0:
        return list(sources), []
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(sources))
    n = min(len(sources) - 1, max(1, round(fraction * len(sources))))
    val = {sources[i] for i in order[:n]}
    return [s for s in sources if s not in val], [s for s in sources if s in val]


def split_note(val: list[str]) -> str:
    names = ", ".join(Path(s).name for s in val[:5]) + (" ..." if len(val) > 5 else "")
    return f"held-out sources {names}" if len(val) <= 5 else f"{len(val)} held-out sources ({names})"


def source_specs(path: str) -> list[dict]:
    """Extraction specs for a user's data: each video is a source; in a folder, each first-level
    subfolder is an identity (LFW layout: its name) and a source, each loose photo a source of
    one album group; a glob or a single file is one source."""
    from mbv1.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES

    p = Path(path)
    if not p.is_dir():
        return [{"source": str(path)}]
    specs: list[dict] = []
    for child in sorted(p.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            if any(f.suffix.lower() in IMAGE_SUFFIXES for f in child.rglob("*")):
                specs.append({"source": str(child), "group": f"{p.name}/{child.name}",
                              "identity_root": str(p)})
        elif child.suffix.lower() in VIDEO_SUFFIXES:
            specs.append({"source": str(child), "group": str(child)})
        elif child.suffix.lower() in IMAGE_SUFFIXES:
            specs.append({"source": str(child), "group": str(p)})
    if not specs:
        raise MBV1Error(f"no photos or videos in {p}")
    return specs


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


def progress_printer(log):
    state = {"last": None}

    def fn(source: str, frames: int, faces: int) -> None:
        if (frames == 1 or frames % 50 == 0) and state["last"] != (source, frames):
            log(f"  {Path(source).name}: {frames} frames, {faces} faces")
            state["last"] = (source, frames)

    return fn


