"""Verification pairs: LFW's ``pairs.txt`` and pairs built from identities of a crop source.

LFW format (``pairs.txt`` / ``pairsDevTest.txt``): a header ``<folds> <pairs per fold>`` (or a
single count for the development view), then per fold ``<pairs>`` matched lines
``name n1 n2`` followed by ``<pairs>`` mismatched lines ``name1 n1 name2 n2``; images are
``<root>/<name>/<name>_<nnnn>.jpg``.

From identities (:mod:`mbv1.faces.cache` rules): a positive pair is two faces of one identity
(two frames of a video track, two photos in one identity folder); a negative pair is two faces
of different identities that are surely different people: in the same frame or photo, or from
different groups. Pairs of one group in different frames are unknown and skipped.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mbv1.errors import MBV1Error

__all__ = ["LFWPair", "lfw_image", "pairs_from_records", "read_lfw_pairs"]


@dataclass(frozen=True)
class LFWPair:
    name1: str
    n1: int
    name2: str
    n2: int
    fold: int

    @property
    def same(self) -> bool:
        return self.name1 == self.name2


def read_lfw_pairs(path: str | Path) -> list[LFWPair]:
    """Parse an LFW pairs file; a malformed line raises a one-line error naming it."""
    p = Path(path)
    try:
        lines = [ln.split() for ln in p.read_text().splitlines() if ln.strip()]
    except OSError as e:
        raise MBV1Error(f"cannot read pairs file {p}: {e}") from None
    if not lines or not all(v.isdigit() for v in lines[0]) or len(lines[0]) not in (1, 2):
        raise MBV1Error(f"{p}:1: expected '<folds> <pairs per fold>' (LFW pairs.txt format)")
    folds, per = (1, int(lines[0][0])) if len(lines[0]) == 1 else map(int, lines[0])
    body = lines[1:]
    # pairs.txt: `per` matched and `per` mismatched lines per fold; pairsDevTrain: a count of each.
    if len(body) != 2 * folds * per:
        raise MBV1Error(f"{p}: header promises {folds} folds of {per} matched + {per} mismatched "
                        f"pairs ({2 * folds * per} lines), the file has {len(body)}")
    out = []
    for n, parts in enumerate(body, 2):
        fold = (n - 2) // (2 * per)
        try:
            if len(parts) == 3:
                out.append(LFWPair(parts[0], int(parts[1]), parts[0], int(parts[2]), fold))
            elif len(parts) == 4:
                out.append(LFWPair(parts[0], int(parts[1]), parts[2], int(parts[3]), fold))
            else:
                raise ValueError
        except ValueError:
            raise MBV1Error(f"{p}:{n}: expected 'name n1 n2' or 'name1 n1 name2 n2', got "
                            f"{' '.join(parts)!r}") from None
    return out


def lfw_image(root: str | Path, name: str, n: int) -> Path:
    """``<root>/<name>/<name>_<nnnn>.jpg`` (LFW's naming)."""
    return Path(root) / name / f"{name}_{n:04d}.jpg"


def pairs_from_records(records: list, indices: list[int] | None = None,
                       max_negatives: int | None = 20_000, seed: int = 0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``(pairs [P, 2] of record indices, same [P] bool)`` by the module's identity rules.

    All positive pairs are kept; negatives beyond ``max_negatives`` are subsampled (seeded).
    """
    idx = list(range(len(records))) if indices is None else list(indices)
    pos, neg = [], []
    for a, b in itertools.combinations(idx, 2):
        ra, rb = records[a], records[b]
        if ra.identity is None or rb.identity is None:
            continue
        if ra.identity == rb.identity:
            if ra.frame_key != rb.frame_key:
                pos.append((a, b))
        elif ra.frame_key == rb.frame_key or ra.group != rb.group:
            neg.append((a, b))
    if max_negatives is not None and len(neg) > max_negatives:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(neg), max_negatives, replace=False))
        neg = [neg[i] for i in keep]
    pairs = np.array(pos + neg, np.int64).reshape(-1, 2)
    same = np.array([True] * len(pos) + [False] * len(neg), bool)
    return pairs, same
