"""Teachers and their outputs on a crop cache (the distillation targets).

Teachers are frozen and deterministic, and face crops get no augmentation but a horizontal
flip, so each teacher runs once per crop and per flip; the outputs are cached beside the crops
(``targets-<teacher>.npz``, arrays ``[N, 2, ...]``: index 0 the crop, 1 its mirror image).
Training then never runs a teacher (fast on CPU; nothing of the teacher in DDP).

Teachers are named by ``distill.attribute_teacher`` / ``distill.embedding_teacher`` and loaded
by :mod:`mbv1.teachers.registry` (face-api, facenet, facenet-pytorch:PATH, timm:..., a trained
student), only when a cached file is missing or stale.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mbv1.errors import MBV1Error
from mbv1.teachers.registry import (
    AttributeTeacher,
    EmbeddingTeacher,
    load_attribute_teacher,
    load_embedding_teacher,
)

__all__ = ["attribute_targets", "embedding_targets"]


def _slug(name: str) -> str:
    if re.fullmatch(r"[a-z0-9-]+", name):
        return name
    return "x" + hashlib.sha1(name.encode()).hexdigest()[:10]


# --------------------------------------------------------------------------- cached targets


def _flip(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else np.ascontiguousarray(a[:, ::-1])


def attribute_targets(cache, teacher: AttributeTeacher | str, batch: int = 32, device: str = "cpu",
                      progress: Callable[[int, int], None] | None = None) -> dict[str, np.ndarray]:
    """``{"age" [N, 2], "gender" [N, 2, 2], "expression" [N, 2, 7]}`` of every face of the
    crop cache (axis 1: crop, mirrored crop), computed once and kept in the cache folder as
    ``targets-attr-<teacher>.npz``. ``teacher`` may be a spec string: it is loaded only when
    the cached file is missing or stale."""
    return _teacher_targets(cache, "attr", teacher, load_attribute_teacher, _attr_batch, batch,
                            device, progress)


def _attr_batch(cache, teacher, idx):
    crops = [cache.crop(i) for i in idx]
    attr = []
    for i, c in zip(idx, crops):
        a = cache.attr_crop(i)
        attr.append(a if a is not None else c)  # no detection box crop: the canonical one
    outs = [teacher(attr, crops), teacher([_flip(a) for a in attr], [_flip(c) for c in crops])]
    return {k: np.stack([outs[0][k], outs[1][k]], 1) for k in outs[0]}


def embedding_targets(cache, teacher: EmbeddingTeacher | str, batch: int = 32,
                      device: str = "cpu",
                      progress: Callable[[int, int], None] | None = None) -> dict[str, np.ndarray]:
    """``{"embedding": [N, 2, D]}`` (unit length; axis 1: crop, mirrored crop), cached as
    ``targets-emb-<teacher>.npz`` (a spec string is loaded only when needed)."""
    return _teacher_targets(cache, "emb", teacher, load_embedding_teacher, _emb_batch, batch,
                            device, progress)


def _emb_batch(cache, teacher, idx):
    crops = [cache.crop(i) for i in idx]
    e0, e1 = teacher(crops), teacher([_flip(c) for c in crops])
    return {"embedding": np.stack([e0, e1], 1).astype(np.float32)}


def _teacher_targets(cache, kind: str, teacher, load, run_batch, batch: int, device: str,
                     progress) -> dict[str, np.ndarray]:
    """``targets-<kind>-<teacher>.npz`` of ``cache``, computed (``run_batch(cache, teacher,
    indices)``) only where missing; a teacher given by spec is loaded only then."""
    name = teacher if isinstance(teacher, str) else teacher.name
    path = cache.root / f"targets-{kind}-{_slug(name)}.npz"

    def compute(idx):
        nonlocal teacher
        if isinstance(teacher, str):
            from mbv1.faces.student import student_teacher

            teacher = load(teacher, device, checkpoint_teacher=student_teacher)
        return run_batch(cache, teacher, idx)

    return _cached(path, cache, compute, batch, progress)


def _cached(path: Path, cache, compute, batch: int, progress) -> dict[str, np.ndarray]:
    ids = np.array([r.id for r in cache.records])
    if path.exists():
        with np.load(path) as z:
            if np.array_equal(z["ids"], ids):
                return {k: z[k] for k in z.files if k != "ids"}
    parts: dict[str, list] = {}
    n = len(ids)
    for start in range(0, n, batch):
        idx = list(range(start, min(start + batch, n)))
        for k, v in compute(idx).items():
            parts.setdefault(k, []).append(np.asarray(v, np.float32))
        if progress:
            progress(idx[-1] + 1, n)
    if not parts:
        raise MBV1Error(f"no faces in {cache.root}: nothing to run the teacher on")
    out = {k: np.concatenate(v) for k, v in parts.items()}
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez(tmp, ids=ids, **out)
    tmp.replace(path)
    return out
