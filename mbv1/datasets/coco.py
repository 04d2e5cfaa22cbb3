"""COCO-format detection datasets (``instances_*.json`` + an image folder) via pycocotools.

Labels are contiguous: the categories sorted by id become labels ``1..C`` (0 = background),
``category_ids[label - 1]`` maps back. Images without boxes stay (they are negatives). Crowd
boxes (``iscrowd``) are left out of training targets, as in the TF OD API and torchvision.
Degenerate boxes (width or height ≤ 1 px after clipping to the image) are dropped with one
warning that counts them. Boxes leave here normalised xyxy in the transformed image.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from mbv1.datasets.images import load_rgb
from mbv1.errors import MBV1Error

# (image HxWx3 uint8 RGB, boxes [K, 4] pixel xyxy float32, labels [K] int64, seed or None)
#   -> (image, boxes, labels) at the output size (mbv1.detection.augment).
Transform = Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]
MIN_BOX_PX = 1.0


def load_coco(annotation_file: str | Path):
    """A pycocotools ``COCO`` index of ``annotation_file``, quietly; one-line MBV1Error when the
    file is missing, not JSON, or lacks ``images`` / ``categories``."""
    from pycocotools.coco import COCO

    path = Path(annotation_file)
    if not path.is_file():
        raise MBV1Error(f"annotation file not found: {path}")
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MBV1Error(f"{path} is not valid JSON ({e.__class__.__name__}: "
                        f"{str(e).splitlines()[0]})") from None
    if not isinstance(data, dict) or not all(k in data for k in ("images", "categories")):
        raise MBV1Error(f"{path} is not a COCO instances file: it needs 'images' and "
                        "'categories' (and 'annotations')")
    data.setdefault("annotations", [])
    validate(data, path)
    for ann in data["annotations"]:  # optional in user files; COCOeval needs both
        ann.setdefault("iscrowd", 0)
        if "area" not in ann:
            ann["area"] = float(ann["bbox"][2]) * float(ann["bbox"][3])
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def validate(data: dict, path: Path) -> None:
    """Check a COCO instances dict field by field: one MBV1Error naming the file, the entry,
    the field, its value and what to do, for the first problem found."""
    for kind in ("images", "annotations", "categories"):
        if not isinstance(data[kind], list):
            raise MBV1Error(f"{path}: '{kind}' must be a list, got {type(data[kind]).__name__}")
    for kind, keys in (("images", ("id", "file_name", "width", "height")),
                       ("annotations", ("id", "image_id", "category_id", "bbox")),
                       ("categories", ("id",))):
        for item in data[kind]:
            missing = [k for k in keys if not isinstance(item, dict) or k not in item]
            if missing:
                raise MBV1Error(f"{path}: an entry of '{kind}' lacks {', '.join(missing)} (each "
                                f"needs {', '.join(keys)}): {str(item)[:120]}")
    images = {}
    for img in data["images"]:
        what = f"{path}: image {img['id']!r}"
        if not _is_int(img["id"]):
            raise MBV1Error(f"{what}: 'id' must be an integer")
        if img["id"] in images:
            raise MBV1Error(f"{what} is listed twice in 'images': image ids must be unique")
        if not isinstance(img["file_name"], str) or not img["file_name"]:
            raise MBV1Error(f"{what}: 'file_name' must be a file name, got {img['file_name']!r}")
        for k in ("width", "height"):
            if not _is_number(img[k]) or img[k] <= 0:
                raise MBV1Error(f"{what} ({img['file_name']}): '{k}' must be a positive number of "
                                f"pixels, got {img[k]!r}")
        images[img["id"]] = img
    cats = set()
    for c in data["categories"]:
        if not _is_int(c["id"]):
            raise MBV1Error(f"{path}: category {c!r}: 'id' must be an integer")
        cats.add(c["id"])
    orphans = []
    for a in data["annotations"]:
        what = f"{path}: annotation {a['id']!r}"
        b = a["bbox"]
        if not isinstance(b, (list, tuple)) or len(b) != 4 or not all(map(_is_number, b)) \
                or b[2] < 0 or b[3] < 0:
            raise MBV1Error(f"{what} has bbox {b!r}: a COCO bbox is [x, y, width, height], four "
                            "finite numbers in pixels with width and height >= 0; fix or remove "
                            "that annotation")
        if a["category_id"] not in cats:
            raise MBV1Error(f"{what} has category_id {a['category_id']!r}: category "
                            f"{a['category_id']!r} is not in 'categories' (ids "
                            f"{sorted(cats)[:10]}); add the category or fix the annotation")
        if a.get("iscrowd", 0) not in (0, 1):
            raise MBV1Error(f"{what}: 'iscrowd' must be 0 or 1, got {a['iscrowd']!r}")
        if a["image_id"] not in images:
            orphans.append(a)
    if orphans:
        a = orphans[0]
        n = len(orphans)
        raise MBV1Error(f"{path}: {n} annotation{'s name' if n > 1 else ' names'} an image_id "
                        f"that is not in 'images' (first: annotation {a['id']!r}, image_id "
                        f"{a['image_id']!r}); add the images or remove those annotations")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def warn(message: str) -> None:
    """A one-line warning on stderr (not a Python warning with its source line)."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def clean_boxes(boxes_xywh: np.ndarray, width: float, height: float,
                min_size: float = MIN_BOX_PX) -> tuple[np.ndarray, np.ndarray]:
    """COCO ``[K, 4]`` pixel xywh → clipped pixel xyxy and the mask of boxes kept (width and
    height > ``min_size`` after clipping)."""
    b = np.asarray(boxes_xywh, np.float32).reshape(-1, 4)
    xyxy = np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], 1)
    xyxy = np.clip(xyxy, 0, [width, height, width, height]).astype(np.float32)
    keep = ((xyxy[:, 2] - xyxy[:, 0]) > min_size) & ((xyxy[:, 3] - xyxy[:, 1]) > min_size)
    return xyxy, keep


class CocoDetection(torch.utils.data.Dataset):
    """A COCO-format detection set.

    Args:
        annotation_file: ``instances_*.json``.
        image_dir: folder the images' ``file_name`` are relative to.
        transform: ``(image uint8 HxWx3, boxes px xyxy [K,4], labels [K], seed) -> (image,
            boxes, labels)`` (resize, augment; :mod:`mbv1.detection.augment`). Without one
            images keep their size.
        mean, std: per-channel normalisation of ``image/255`` (RGB).
        category_ids: a label map to follow instead of this file's (a val set uses the train
            set's): COCO category ids in label order. Other categories are an error.
        seed: ``train.seed``: sample ``i`` of epoch ``e`` is augmented with
            ``sample_seed(seed, e, i)``; ``None`` passes no seed (evaluation).
        on_bad_image: ``skip`` (report the unreadable image once, the item is ``None``, which
            :func:`collate` drops) or ``fail``.
        image_ids: use only these images of the file (a held-out split); default all.
        soft: read each annotation's ``soft`` list (a teacher's score of every class at that
            box: detector distillation, :mod:`mbv1.detection.distill_data`) into the items'
            ``soft`` ``[K, num_classes]``.

    ``ds[i]`` is a dict: ``image`` float32 ``[3, H, W]`` normalised, ``boxes`` float32
    ``[K, 4]`` normalised xyxy in ``image``, ``labels`` int64 ``[K]`` (1-based), ``image_id``
    int and ``orig_size`` ``(height, width)`` of the file in pixels.
    """

    def __init__(self, annotation_file: str | Path, image_dir: str | Path,
                 transform: Transform | None = None,
                 mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.5, 0.5, 0.5),
                 category_ids: Sequence[int] | None = None, seed: int | None = None,
                 on_bad_image: str = "fail", image_ids: Sequence[int] | None = None,
                 soft: bool = False):
        if on_bad_image not in ("skip", "fail"):
            raise ValueError(f"on_bad_image must be skip or fail; got {on_bad_image!r}")
        self.seed, self.epoch, self.on_bad_image, self.soft = seed, 0, on_bad_image, soft
        self._reported: set[str] = set()
        self.annotation_file = Path(annotation_file)
        self.image_dir = Path(image_dir)
        self.transform = transform
        self.mean = np.asarray(mean, np.float32).reshape(3, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(3, 1, 1)
        self.coco = load_coco(self.annotation_file)
        cats = sorted(self.coco.cats.values(), key=lambda c: c["id"])
        if category_ids is None:
            category_ids = [c["id"] for c in cats]
        self.category_ids = [int(c) for c in category_ids]
        names = {c["id"]: c.get("name", str(c["id"])) for c in cats}
        self.class_names = [names.get(c, str(c)) for c in self.category_ids]
        self._label_of = {c: i + 1 for i, c in enumerate(self.category_ids)}
        self.image_ids = sorted(self.coco.imgs) if image_ids is None else sorted(int(i) for i in image_ids)
        unknown = [i for i in self.image_ids if i not in self.coco.imgs]
        if unknown:
            raise MBV1Error(f"{self.annotation_file} has no image with id {unknown[0]}")
        self._check_images()
        self._soft: dict[int, np.ndarray] = {}
        self._targets = [self._targets_of(i) for i in self.image_ids]
        self.num_dropped = sum(d for _, _, d in self._targets)
        if self.num_dropped:
            warn(f"{self.annotation_file}: dropped {self.num_dropped} degenerate boxes (width "
                 f"or height <= {MIN_BOX_PX:g} px after clipping to the image)")

    def set_epoch(self, epoch: int) -> None:
        """Called by the engine before each epoch: augmentation seeds depend on it."""
        self.epoch = epoch

    @property
    def num_classes(self) -> int:
        return len(self.category_ids)

    def label_meta(self) -> dict:
        """The label map for a checkpoint: names in label order (label 1 first) and their COCO
        category ids."""
        return {"labels": list(self.class_names), "category_ids": list(self.category_ids)}

    def _check_images(self) -> None:
        if not self.image_dir.is_dir():
            raise MBV1Error(f"image folder not found: {self.image_dir} "
                            f"(for {self.annotation_file})")
        present = set(os.listdir(self.image_dir))
        missing = [self.coco.imgs[i]["file_name"] for i in self.image_ids
                   if self.coco.imgs[i]["file_name"] not in present
                   and not (self.image_dir / self.coco.imgs[i]["file_name"]).is_file()]
        if not missing:
            return
        first = f"image file not found: {self.image_dir / missing[0]}"
        counts = f"{len(missing)} of {len(self.image_ids)} images of {self.annotation_file}"
        if self.on_bad_image == "fail" or len(missing) == len(self.image_ids):
            raise MBV1Error(f"{first} ({counts} missing)")
        warn(f"{first}; skipping {counts} (data.on_bad_image=skip)")
        gone = set(missing)
        self.image_ids = [i for i in self.image_ids if self.coco.imgs[i]["file_name"] not in gone]

    def _targets_of(self, image_id: int) -> tuple[np.ndarray, np.ndarray, int]:
        info = self.coco.imgs[image_id]
        anns = [a for a in self.coco.imgToAnns.get(image_id, []) if not a.get("iscrowd", 0)]
        for a in anns:
            if a["category_id"] not in self._label_of:
                raise MBV1Error(f"{self.annotation_file}: annotation {a.get('id')} has category "
                                f"{a['category_id']}, not one of {self.category_ids}")
            if self.soft and len(a.get("soft") or ()) != self.num_classes:
                raise MBV1Error(f"{self.annotation_file}: annotation {a.get('id')} has no 'soft' "
                                f"list of {self.num_classes} class scores (teacher outputs); "
                                "make the file again")
        if not anns:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.int64), 0
        xyxy, keep = clean_boxes([a["bbox"] for a in anns], info["width"], info["height"])
        labels = np.array([self._label_of[a["category_id"]] for a in anns], np.int64)
        if self.soft:
            soft = np.asarray([a["soft"] for a in anns], np.float32)[keep]
            self._soft[image_id] = soft
        return xyxy[keep], labels[keep], int((~keep).sum())

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, index: int) -> dict | None:
        image_id = self.image_ids[index]
        info = self.coco.imgs[image_id]
        path = self.image_dir / info["file_name"]
        try:
            image = np.asarray(load_rgb(path), dtype=np.uint8)
        except MBV1Error as e:
            if self.on_bad_image == "fail":
                raise
            if str(path) not in self._reported:  # once per process
                self._reported.add(str(path))
                print(f"warning: skipping {e}", file=sys.stderr, flush=True)
            return None
        h, w = image.shape[:2]
        boxes, labels, _ = self._targets[index]
        if (w, h) != (info["width"], info["height"]):  # the file disagrees with the JSON
            boxes = boxes * np.array([w / info["width"], h / info["height"]] * 2, np.float32)
        boxes, labels = boxes.copy(), labels.copy()
        soft = self._soft.get(image_id, np.zeros((len(labels), self.num_classes), np.float32))
        if self.transform is not None:
            from mbv1.seeding import sample_seed

            seed = None if self.seed is None else sample_seed(self.seed, self.epoch, index)
            # the transform drops boxes: it carries their indices, which pick labels and soft
            image, boxes, kept = self.transform(image, boxes, np.arange(len(labels)), seed)
            kept = np.asarray(kept, np.int64).reshape(-1)
            labels, soft = labels[kept], soft[kept]
        th, tw = image.shape[:2]
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4) / np.array([tw, th, tw, th], np.float32)
        # numpy, not torch: no intra-op thread pool spinning in data-loader workers
        x = (image.transpose(2, 0, 1).astype(np.float32) / 255.0 - self.mean) / self.std
        item = {"image": torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                "boxes": torch.from_numpy(boxes.clip(0.0, 1.0)),
                "labels": torch.from_numpy(np.asarray(labels, np.int64).reshape(-1)),
                "image_id": int(image_id), "orig_size": (h, w)}
        if self.soft:
            item["soft"] = torch.from_numpy(np.ascontiguousarray(soft, np.float32))
        return item


def collate(samples: list[dict | None]) -> dict | None:
    """Batch samples of :class:`CocoDetection`: ``image [N, 3, H, W]`` (all the same size: use a
    resizing transform), ``boxes`` / ``labels`` lists of per-image tensors, ``image_id``
    int64 ``[N]`` and ``orig_size`` int64 ``[N, 2]`` (height, width). ``None`` items (skipped
    bad images) are dropped; ``None`` when nothing is left."""
    samples = [s for s in samples if s is not None]
    if not samples:
        return None
    sizes = {tuple(s["image"].shape) for s in samples}
    if len(sizes) > 1:
        raise MBV1Error(f"cannot batch images of different sizes {sorted(sizes)}: give the "
                        "dataset a resizing transform (mbv1.detection.augment)")
    batch = {"image": torch.stack([s["image"] for s in samples]),
             "boxes": [s["boxes"] for s in samples], "labels": [s["labels"] for s in samples],
             "image_id": torch.tensor([s["image_id"] for s in samples], dtype=torch.long),
             "orig_size": torch.tensor([s["orig_size"] for s in samples], dtype=torch.long)}
    if all("soft" in s for s in samples):
        batch["soft"] = [s["soft"] for s in samples]
    return batch


def find_split(root: Path, split: str) -> tuple[Path, Path] | None:
    """``(instances json, image folder)`` of ``split`` under ``root``, or None."""
    ann = root / "annotations"
    for name in (split, f"{split}2017", f"{split}2014"):
        js = ann / f"instances_{name}.json"
        if js.is_file():
            for folder in (root / "images" / name, root / name, root / "images" / split):
                if folder.is_dir():
                    return js, folder
            raise MBV1Error(f"found {js} but no image folder for it: expected "
                            f"{root / 'images' / name} or {root / name}")
    return None
