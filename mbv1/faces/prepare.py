"""The face tasks' training data, prepared once: faces detected, aligned and cropped into a
crop cache (the embedded default, a user folder / glob / video, or CelebA as distributed), split
by whole source, and the frozen teachers' outputs cached beside the crops. Plain functions of
the ``data`` and ``distill`` settings (attribute objects such as the face task's config
sections); the trainer is not needed."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

from mbv1.errors import MBV1Error
from mbv1.faces import default_data
from mbv1.faces.sources import (
    ExtractionProgress,
    Joined,
    holdout,
    source_specs,
    split_fraction,
    split_note,
)

__all__ = ["face_finder", "extract", "training_sources", "teacher_targets"]


def finder_settings(d) -> dict:
    return {"detector": d.detector, "landmarks": d.landmarks, "policy": d.crop,
            "size": d.crop_size, "margin": d.margin}


def face_finder(d, device: str = "cpu"):
    """The detector + crop policy of the ``data`` settings ``d``."""
    from mbv1.faces.pipeline import FaceFinder

    return FaceFinder(**finder_settings(d), device=str(device))


def extract(path: str, cache_root: str | None, d, finder, log):
    """Crop cache of the photos/videos at ``path`` (made once; a crop cache folder as is)."""
    from mbv1.assets import cache_dir
    from mbv1.faces.cache import CropCache, extract_faces

    p = Path(path)
    if (p / "meta.json").is_file() and (p / "faces.jsonl").exists():
        return CropCache(p)  # already a crop cache
    specs = source_specs(path)
    if cache_root is None:
        key = json.dumps([str(p.resolve()), finder.describe(), d.vid_stride, d.max_frames],
                         sort_keys=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", p.name).strip("._") or "data"
        cache_root = str(cache_dir() / "faces" /
                         f"{stem}-{hashlib.sha1(key.encode()).hexdigest()[:10]}")
    log(f"faces: detecting and cropping {len(specs)} sources of {path} into {cache_root}")
    with ExtractionProgress("faces", log) as progress:
        cache = extract_faces(specs, cache_root, finder, d.vid_stride, d.max_frames or None,
                              progress=progress)
    if not len(cache):
        raise MBV1Error(f"the face detector found no face in the {len(specs)} photos and videos "
                        f"of {path}: pass pictures that show faces (about 40 px or larger), or try "
                        f"data.detector=mtcnn (now {d.detector})")
    return cache


def training_sources(d, device: str, log):
    """``(crop source, train indices, val indices, split description, celeba or None)`` of the
    ``data`` settings ``d``: held out by whole source (``d.holdout``, else ``d.val_split`` of
    the sources), or ``d.val_path``, or CelebA's own partition."""
    if d.path is None:
        finder = face_finder(d, device)
        root = d.cache or str(default_data.default_cache_dir(finder.describe()))
        if not Path(root, "meta.json").exists():
            log(f"faces: building the embedded default data (real photos and videos of the "
                f"asset cache) into {root}")
        with ExtractionProgress("faces", log) as progress:
            cache = default_data.build_default_cache(finder, root, progress=progress)
        train_src, val_src = default_data.split_sources(cache.sources())
        if d.holdout:
            train_src, val_src = holdout(cache.sources(), d.holdout)
        split = default_data.SPLIT_NOTE if not d.holdout else split_note(val_src)
        return cache, cache.indices(train_src), cache.indices(val_src), split, None
    from mbv1.faces.data import CelebAFaces, is_celeba, read_celeba

    if is_celeba(d.path):
        from mbv1.assets import cache_dir

        celeba = read_celeba(d.path)
        key = hashlib.sha1(str(Path(d.path).resolve()).encode()).hexdigest()[:10]
        root = Path(d.cache) if d.cache else cache_dir() / "faces" / f"celeba-{key}"
        src = CelebAFaces(celeba, root, d.crop_size)
        ev = 2 if d.celeba_eval == "test" else 1
        train = np.flatnonzero(celeba.partition == 0).tolist()
        val = np.flatnonzero(celeba.partition == ev).tolist()
        split = f"CelebA {d.celeba_eval} partition ({len(val):,} images)"
        return src, train, val, split, celeba
    finder = face_finder(d, device)
    cache = extract(d.path, d.cache, d, finder, log)
    if d.val_path:
        val_cache = extract(d.val_path, None, d, finder, log)
        return Joined(cache, val_cache), list(range(len(cache))), \
            list(range(len(cache), len(cache) + len(val_cache))), \
            f"{d.val_path} ({len(val_cache)} faces)", None
    sources = cache.sources()
    if d.holdout:
        train_src, val_src = holdout(sources, d.holdout)
    else:
        train_src, val_src = split_fraction(sources, d.val_split, d.split_seed)
    return cache, cache.indices(train_src), cache.indices(val_src), split_note(val_src), None


def teacher_targets(src, groups: tuple[str, ...], d, dc, celeba, device: str, log
                    ) -> dict[str, np.ndarray]:
    """The teachers' outputs on every face of ``src`` (cached beside the crops) for the head
    ``groups`` (``attributes``, ``embeddings``); ``dc`` are the ``distill`` settings."""
    from mbv1.faces import targets as T

    out: dict[str, np.ndarray] = {}
    if "attributes" in groups and (celeba is None or d.celeba_mode != "supervised"):
        log(f"faces: attribute teacher {dc.attribute_teacher} on {len(src)} faces "
            "(cached beside the crops)")
        out.update(T.attribute_targets(src, dc.attribute_teacher, device=str(device)))
    if "embeddings" in groups:
        log(f"faces: embedding teacher {dc.embedding_teacher} on {len(src)} faces "
            "(cached beside the crops)")
        out.update(T.embedding_targets(src, dc.embedding_teacher, device=str(device)))
    return out
