"""Labelled image lists from folders: any ``<root>/<class>/*`` tree and ILSVRC's layout.

Layouts (``data.layout = folder``; the class of an image is the folder directly below the
split root, nested sub-folders included):

* ``root/train/<class>/*`` + ``root/val/<class>/*`` (or ``validation/`` / ``test/``): the
  split as given. ILSVRC's ``train/<wnid>/*.JPEG`` is this layout.
* ``root/train/<class>/*`` + a flat ``root/val/*.JPEG`` with a labels file: ``data.val_labels``
  or found in root: Kaggle's ``LOC_val_solution.csv`` (``ImageId,PredictionString``), a text or
  CSV of ``<file> <label>`` lines, or the devkit's ``ILSVRC2012_validation_ground_truth.txt``
  with ``meta.mat`` (1-based ILSVRC2012_IDs -> wnids).
* ``root/<class>/*``: a held-out split of ``data.val_split`` per class, drawn with
  ``data.split_seed`` (stable when the training seed changes).

Labels are the sorted training class names. A validation image whose label is not among them,
or that has no label, is an error naming it: never a silent wrong label.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mbv1.datasets.images import is_image_file
from mbv1.errors import MBV1Error

VAL_NAMES = ("val", "validation", "test")
VAL_LABEL_FILES = ("LOC_val_solution.csv", "val_labels.txt", "val_labels.csv", "val.txt",
                   "ILSVRC2012_validation_ground_truth.txt")


@dataclass(frozen=True)
class Sample:
    """One labelled image; ``box`` (x0, y0, x1, y1 in pixels) crops it when given."""

    path: str
    label: int
    box: tuple[int, int, int, int] | None = None


@dataclass
class SampleSet:
    """Train and validation samples over one label list, with the split names to report."""

    train: list[Sample]
    val: list[Sample]
    labels: list[str]
    train_split: str
    val_split: str
    layout: str
    label_names: dict[str, str] | None = None  # e.g. wnid -> "tench, Tinca tinca"


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted; hidden files skipped."""
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and is_image_file(p) and not p.name.startswith("."))


def class_folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan_classes(root: Path, labels: list[str] | None = None,
                 what: str = "training") -> tuple[list[Sample], list[str]]:
    """Samples of ``root/<class>/*``; ``labels`` fixes the label order (validation sets)."""
    if not root.is_dir():
        raise MBV1Error(f"{what} folder not found: {root}")
    names = class_folders(root)
    if not names:
        n = sum(1 for p in root.iterdir() if p.is_file() and is_image_file(p))
        raise MBV1Error(f"{root} has no class folders" + (f" ({n} loose images)" if n else "")
                        + ": expected <root>/<class>/<image> (e.g. train/n01440764/x.JPEG)")
    labels = names if labels is None else labels
    index = {name: i for i, name in enumerate(labels)}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise MBV1Error(f"{what} folder {root} has classes the labels lack: {unknown[:5]} "
                        f"({len(unknown)} in all); labels are {labels[:5]}...")
    samples, empty = [], []
    for name in names:
        files = list_images(root / name)
        if not files:
            empty.append(name)
        samples += [Sample(str(p), index[name]) for p in files]
    if not samples:
        raise MBV1Error(f"{root} has class folders but no images (extensions: jpg, png, ...)")
    if empty and what == "training":
        raise MBV1Error(f"training class folders without images: {empty[:5]} ({len(empty)} in "
                        f"all) under {root}; remove them or add images")
    return samples, labels


def read_folder_dataset(root: str | Path, val_path: str | Path | None = None,
                        val_labels: str | Path | None = None, val_split: float = 0.1,
                        split_seed: int = 0) -> SampleSet:
    """Samples of any of the layouts in the module docstring."""
    root = Path(root)
    if not root.is_dir():
        raise MBV1Error(f"data folder not found: {root}")
    train_dir = root / "train"
    if not train_dir.is_dir():
        if val_path is not None:
            train, labels = scan_classes(root)
            val, split = _read_val(Path(val_path), root, labels, val_labels)
            return SampleSet(train, val, labels, f"{root}", split, "folder")
        samples, labels = scan_classes(root)
        train, val = stratified_split(samples, val_split, split_seed)
        split = (f"held-out {val_split:.0%} of {root.name}/ per class (split seed {split_seed}, "
                 f"{len(val):,} images)")
        return SampleSet(train, val, labels, f"{root.name}/ minus held-out", split, "folder")
    train, labels = scan_classes(train_dir)
    vdir = Path(val_path) if val_path else next((root / n for n in VAL_NAMES
                                                 if (root / n).is_dir()), None)
    if vdir is None:
        train, val = stratified_split(train, val_split, split_seed)
        return SampleSet(train, val, labels, "train minus held-out",
                         f"held-out {val_split:.0%} of train/ (split seed {split_seed}, "
                         f"{len(val):,} images)", "folder")
    val, split = _read_val(vdir, root, labels, val_labels)
    return SampleSet(train, val, labels, "train", split, "folder",
                     label_names=read_label_names(root))


def _read_val(vdir: Path, root: Path, labels: list[str],
              val_labels: str | Path | None) -> tuple[list[Sample], str]:
    if not vdir.is_dir():
        raise MBV1Error(f"validation folder not found: {vdir}")
    if class_folders(vdir):
        val, _ = scan_classes(vdir, labels, what="validation")
        return val, f"{vdir.name}/ ({len(val):,} images)"
    files = [p for p in sorted(vdir.iterdir()) if p.is_file() and is_image_file(p)]
    if not files:
        raise MBV1Error(f"validation folder {vdir} is empty: expected <class>/<image> folders "
                        "or images with a labels file")
    label_file = Path(val_labels) if val_labels else next(
        (root / n for n in VAL_LABEL_FILES if (root / n).is_file()), None)
    if label_file is None:
        raise MBV1Error(f"{vdir} holds {len(files):,} images but no class folders and no labels "
                        f"file: pass data.val_labels=FILE ('<file> <label>' lines, Kaggle "
                        f"LOC_val_solution.csv or the devkit ground truth) or sort them into "
                        f"<class>/ folders")
    by_name = read_val_labels(label_file, root)
    index = {name: i for i, name in enumerate(labels)}
    samples, missing = [], []
    for p in files:
        label = by_name.get(p.name, by_name.get(p.stem))
        if label is None:
            missing.append(p.name)
            continue
        if label not in index:
            raise MBV1Error(f"{label_file} labels {p.name} as {label!r}, which is not a training "
                            f"class (training classes: {labels[:3]}...)")
        samples.append(Sample(str(p), index[label]))
    if missing:
        raise MBV1Error(f"{len(missing)} validation images have no label in {label_file} "
                        f"(first: {missing[0]})")
    return samples, f"{vdir.name}/ labelled by {label_file.name} ({len(samples):,} images)"


def read_val_labels(path: Path, root: Path | None = None) -> dict[str, str]:
    """``{file name or stem: label}`` from a labels file (formats in the module docstring)."""
    if not path.is_file():
        raise MBV1Error(f"labels file not found: {path}")
    if path.name.startswith("ILSVRC2012_validation_ground_truth"):
        return _devkit_labels(path, root or path.parent)
    out: dict[str, str] = {}
    with path.open(newline="") as f:
        for n, row in enumerate(csv.reader(f, delimiter="," if _is_csv(path) else " ")):
            row = [c for c in (x.strip() for x in row) if c]
            if not row or (n == 0 and row[0].lower() in ("imageid", "file", "filename", "path")):
                continue
            if len(row) < 2:
                raise MBV1Error(f"{path} line {n + 1}: expected '<file> <label>', got {row!r}")
            out[Path(row[0]).name] = row[1].split()[0]  # Kaggle: "wnid x0 y0 x1 y1 ..."
    if not out:
        raise MBV1Error(f"labels file {path} has no entries")
    return out


def _is_csv(path: Path) -> bool:
    head = path.open().readline()
    return path.suffix.lower() == ".csv" or ("," in head and " " not in head.split(",")[0])


def _devkit_labels(path: Path, root: Path) -> dict[str, str]:
    """Devkit: line k holds the ILSVRC2012_ID of ILSVRC2012_val_{k:08d}.JPEG; meta.mat maps
    IDs to wnids (the IDs are not the sorted-wnid order)."""
    meta = next((p for p in (root / "meta.mat", root / "ILSVRC2012_devkit_t12/data/meta.mat",
                             path.parent / "meta.mat") if p.is_file()), None)
    if meta is None:
        raise MBV1Error(f"{path.name} needs the devkit's meta.mat (ILSVRC2012_ID -> wnid) in "
                        f"{root} or ILSVRC2012_devkit_t12/data/")
    wnid = {i: w for i, w, _ in _synsets(meta)}
    ids = [int(x) for x in path.read_text().split()]
    return {f"ILSVRC2012_val_{k:08d}.JPEG": wnid[i] for k, i in enumerate(ids, start=1)}


def _synsets(meta: Path) -> list[tuple[int, str, str]]:
    from scipy.io import loadmat

    syn = loadmat(str(meta), squeeze_me=True)["synsets"]
    return [(int(s["ILSVRC2012_ID"]), str(s["WNID"]), str(s["words"])) for s in syn]


def read_label_names(root: Path) -> dict[str, str] | None:
    """Human names of wnids when the data ships them (Kaggle's LOC_synset_mapping.txt)."""
    mapping = root / "LOC_synset_mapping.txt"
    if mapping.is_file():
        pairs = (line.split(" ", 1) for line in mapping.read_text().splitlines() if line.strip())
        return {p[0]: p[1].strip() for p in pairs if len(p) == 2}
    return None


def stratified_split(samples: list[Sample], fraction: float,
                     seed: int) -> tuple[list[Sample], list[Sample]]:
    """Hold out ``fraction`` of every class (at least one image of classes with two or more)."""
    if not 0 < fraction < 1:
        raise MBV1Error(f"data.val_split must be in (0, 1) to hold images out; got {fraction}")
    rng = np.random.default_rng(seed)
    by_label: dict[int, list[Sample]] = {}
    for s in samples:
        by_label.setdefault(s.label, []).append(s)
    train, val = [], []
    for label in sorted(by_label):
        group = by_label[label]
        order = rng.permutation(len(group))
        k = min(len(group) - 1, max(1, round(fraction * len(group)))) if len(group) > 1 else 0
        val += [group[i] for i in sorted(order[:k])]
        train += [group[i] for i in sorted(order[k:])]
    return train, val


def expand_sources(sources: list[str]) -> list[Path]:
    """Images named by files, folders (recursive) and glob patterns, in order, no repeats."""
    import glob


    out: list[Path] = []
    for src in sources:
        p = Path(src)
        if p.is_dir():
            found = list_images(p)
        elif p.is_file():
            found = [p]
        elif any(c in src for c in "*?["):
            found = sorted(Path(x) for x in glob.glob(src, recursive=True)
                           if Path(x).is_file() and is_image_file(x))
        else:
            raise MBV1Error(f"image not found: {src}")
        if not found:
            raise MBV1Error(f"no images in {src}")
        out += [f for f in found if f not in out]
    return out
