"""Unlabelled real data as *sources* and their split: a video, a photo folder or a photo is a
source; a held-out split never shares one with training. Shared by every task that learns from
a teacher on a user's photos and videos (the face students, detector distillation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mbv1.errors import MBV1Error

__all__ = ["holdout", "source_specs", "split_fraction", "split_note"]


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
