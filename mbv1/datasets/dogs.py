"""Stanford Dogs as distributed (Khosla et al. 2011; the paper's Table 10).

Layout::

    root/Images/n02085620-Chihuahua/n02085620_5927.jpg
    root/Annotation/n02085620-Chihuahua/n02085620_5927      (PASCAL VOC XML, no extension)
    root/lists/train_list.mat, root/lists/test_list.mat     (12,000 / 8,580 images)

Each .mat list holds ``file_list`` and ``annotation_list`` (cell arrays of relative paths) and
``labels`` (1-based class numbers, in the sorted order of the 120 class folders). The loader
checks that every label names exactly one class folder, so a list that disagrees with the
folders fails instead of training on wrong labels. With ``crop_to_box`` each image is cropped
to the union of its annotated dog boxes (all boxes of an image are the same breed).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from mbv1.datasets.folder import Sample, SampleSet
from mbv1.errors import MBV1Error

TRAIN_SIZE, TEST_SIZE, NUM_CLASSES = 12_000, 8_580, 120


def is_stanford_dogs(root: Path) -> bool:
    return (root / "lists" / "train_list.mat").is_file() and (root / "Images").is_dir()


def breed_name(folder: str) -> str:
    """``n02085620-Chihuahua`` -> ``Chihuahua`` (the wnid is kept in the folder name)."""
    return folder.split("-", 1)[1] if "-" in folder else folder


def read_list(path: Path) -> list[tuple[str, str, int]]:
    """``(file, annotation, label 0-based)`` rows of a Stanford Dogs ``*_list.mat``."""
    from scipy.io import loadmat

    if not path.is_file():
        raise MBV1Error(f"Stanford Dogs list not found: {path}")
    try:
        mat = loadmat(str(path), squeeze_me=True)
    except Exception as e:  # noqa: BLE001  scipy raises many types for foreign files
        raise MBV1Error(f"cannot read {path} as a MATLAB .mat file: {e}") from None
    missing = [k for k in ("file_list", "labels") if k not in mat]
    if missing:
        raise MBV1Error(f"{path} lacks {missing} (expected file_list, annotation_list, labels)")
    files = [str(f) for f in np.atleast_1d(mat["file_list"])]
    annotations = ([str(a) for a in np.atleast_1d(mat["annotation_list"])]
                   if "annotation_list" in mat else [str(Path(f).with_suffix("")) for f in files])
    labels = [int(x) for x in np.atleast_1d(mat["labels"])]
    if not (len(files) == len(annotations) == len(labels)):
        raise MBV1Error(f"{path}: file_list, annotation_list and labels differ in length "
                        f"({len(files)}, {len(annotations)}, {len(labels)})")
    if labels and min(labels) < 1:
        raise MBV1Error(f"{path}: labels must be 1-based, found {min(labels)}")
    return [(f, a, lab - 1) for f, a, lab in zip(files, annotations, labels)]


def read_voc_boxes(path: Path) -> tuple[list[tuple[int, int, int, int]], tuple[int, int] | None]:
    """Boxes ``(xmin, ymin, xmax, ymax)`` and the image ``(width, height)`` of a VOC XML."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise MBV1Error(f"cannot read annotation {path}: {e}") from None
    size = root.find("size")
    wh = None
    if size is not None and size.findtext("width") and size.findtext("height"):
        wh = (int(float(size.findtext("width"))), int(float(size.findtext("height"))))
    boxes = []
    for obj in root.iter("object"):
        b = obj.find("bndbox")
        if b is None:
            continue
        try:
            boxes.append(tuple(int(float(b.findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax")))
        except (TypeError, ValueError):
            raise MBV1Error(f"annotation {path} has a box without numeric "
                            "xmin/ymin/xmax/ymax") from None
    return boxes, wh


def union_box(boxes, wh) -> tuple[int, int, int, int] | None:
    """The union of ``boxes`` clipped to the image; ``None`` when empty or degenerate."""
    if not boxes:
        return None
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    if wh is not None:
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(wh[0], x1), min(wh[1], y1)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def read_stanford_dogs(root: str | Path, crop_to_box: bool = False) -> SampleSet:
    """Train (train_list.mat) and test (test_list.mat) samples over the 120 breeds."""
    root = Path(root)
    if not is_stanford_dogs(root):
        raise MBV1Error(f"{root} is not Stanford Dogs as distributed: expected Images/, "
                        "Annotation/ and lists/train_list.mat, lists/test_list.mat")
    train_rows = read_list(root / "lists" / "train_list.mat")
    test_rows = read_list(root / "lists" / "test_list.mat")
    folders = _label_folders(train_rows + test_rows, root)
    labels = [breed_name(f) for f in folders]
    train = _samples(train_rows, root, crop_to_box)
    test = _samples(test_rows, root, crop_to_box)
    crop = ", cropped to the annotated boxes" if crop_to_box else ""
    test_name = ("Stanford Dogs test" if len(test) == TEST_SIZE else
                 "Stanford Dogs test_list.mat") + f" ({len(test):,} images{crop})"
    return SampleSet(train, test, labels, f"Stanford Dogs train ({len(train):,} images{crop})",
                     test_name, "stanford-dogs",
                     label_names={b: f for b, f in zip(labels, folders)})


def _label_folders(rows, root: Path) -> list[str]:
    """Folder of each label, checked one-to-one against the lists and the Images/ tree."""
    folder_of: dict[int, str] = {}
    for file, _, label in rows:
        folder = Path(file).parts[0]
        if folder_of.setdefault(label, folder) != folder:
            raise MBV1Error(f"lists disagree: label {label + 1} is {folder_of[label]!r} and "
                            f"{folder!r} ({file}); refusing to train on ambiguous labels")
    n = max(folder_of) + 1
    gaps = [i + 1 for i in range(n) if i not in folder_of]
    if gaps:
        raise MBV1Error(f"the lists use labels 1..{n} but never {gaps[:5]}: incomplete lists?")
    if len(set(folder_of.values())) != n:
        raise MBV1Error("the lists give one class folder two labels; refusing ambiguous labels")
    on_disk = sorted(p.name for p in (root / "Images").iterdir() if p.is_dir())
    expected = [folder_of[i] for i in range(n)]
    if expected != sorted(expected):
        raise MBV1Error("the lists' labels are not in the sorted order of the class folders "
                        f"(label 1 = {expected[0]!r}); these are not the official lists")
    stray = sorted(set(expected) - set(on_disk))
    if stray:
        raise MBV1Error(f"the lists name class folders missing from {root / 'Images'}: {stray[:3]}")
    return expected


def _samples(rows, root: Path, crop_to_box: bool) -> list[Sample]:
    samples, missing = [], []
    for file, annotation, label in rows:
        path = root / "Images" / file
        if not path.is_file():
            missing.append(file)
            continue
        box = None
        if crop_to_box:
            xml = root / "Annotation" / annotation
            if not xml.is_file():
                raise MBV1Error(f"data.crop_to_box needs {xml}, which is missing")
            box = union_box(*read_voc_boxes(xml))
        samples.append(Sample(str(path), label, box))
    if missing:
        raise MBV1Error(f"{len(missing)} images in the lists are missing under "
                        f"{root / 'Images'} (first: {missing[0]})")
    return samples
