"""Datasets of the face tasks: cached crops + teacher targets, and CelebA as distributed.

* :class:`FaceCropDataset`: faces of a crop cache (:mod:`mbv1.faces.cache`) with the cached
  teacher outputs (:mod:`mbv1.faces.targets`); the only augmentation is a horizontal flip
  (seeded per sample and epoch), whose teacher outputs are cached too, so the targets are
  exactly the teacher's on the very image the student sees.
* :func:`read_celeba` / :class:`CelebAFaces`: CelebA's ``list_attr_celeba.txt`` (40 binary
  attributes, ±1), ``list_eval_partition.txt`` (0 train, 1 val, 2 test), ``img_align_celeba/``
  and optionally ``identity_CelebA.txt``. Its aligned 178x218 images are used as face crops as
  they are (centre square, top at row 20, resized to the canonical size): no detector.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from mbv1.datasets.images import crop_to_tensor
from mbv1.errors import MBV1Error

__all__ = ["CelebAFaces", "FaceCropDataset", "FaceRoIDataset", "crop_to_tensor", "is_celeba", "read_celeba"]

CELEBA_ATTR = "list_attr_celeba.txt"
CELEBA_PARTITION = "list_eval_partition.txt"
CELEBA_IMAGES = "img_align_celeba"
CELEBA_IDENTITY = "identity_CelebA.txt"


class FaceCropDataset(Dataset):
    """Faces ``indices`` of ``source`` (a CropCache or :class:`CelebAFaces`) as student inputs
    with their targets.

    Items: ``image [3, R, R]``, ``index`` (into ``source.records``), ``flip`` (0/1), and per
    available target ``t_age``, ``t_gender [2]``, ``t_expression [7]``, ``t_embedding [D]``,
    ``celeba [40]`` (0/1 floats; ``celeba_mask`` 1 where known).

    Args:
        targets: arrays ``[N_source, 2, ...]`` (axis 1: crop, mirrored crop) by target name.
        train: augment (seeded by seed, epoch, index); evaluation never does. Mirror with
            probability 1/2 when ``hflip`` (its teacher outputs are cached too); with probability
            ``degrade`` shrink the crop to 8-60% of its side and enlarge it back (low-resolution
            video faces), and jitter brightness and contrast by up to ``color_jitter``. The
            teacher's targets stay those of the clean crop: the student learns to read the
            teacher's answer from a worse picture.
    """

    def __init__(self, source, indices: list[int], resolution: int, mean, std,
                 targets: dict[str, np.ndarray], train: bool = False, seed: int = 0,
                 celeba: np.ndarray | None = None, hflip: bool = True, degrade: float = 0.0,
                 color_jitter: float = 0.0):
        self.source, self.indices = source, list(indices)
        self.resolution, self.mean, self.std = resolution, tuple(mean), tuple(std)
        self.targets, self.train, self.seed, self.epoch = targets, train, seed, 0
        self.hflip, self.degrade, self.color_jitter = hflip, degrade, color_jitter
        self.celeba = celeba
        self.split = "val"

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.indices)

    def _rng(self, i: int) -> np.random.Generator:
        from mbv1.seeding import sample_seed

        return np.random.default_rng(sample_seed(self.seed, self.epoch, i))

    def __getitem__(self, i: int) -> dict:
        j = self.indices[i]
        crop = self.source.crop(j)
        flip = 0
        if self.train:
            rng = self._rng(i)
            flip = int(self.hflip and rng.random() < 0.5)
            crop = degrade(crop, rng, self.degrade, self.color_jitter)
        item = {"image": crop_to_tensor(crop, self.resolution, self.mean, self.std, bool(flip)),
                "index": j, "flip": flip}
        for name, arr in self.targets.items():
            item[f"t_{name}"] = torch.from_numpy(np.asarray(arr[j, flip], np.float32))
        if self.celeba is not None:
            row = self.celeba[j]
            item["celeba"] = torch.from_numpy((row > 0).astype(np.float32))
            item["celeba_mask"] = torch.from_numpy((row != 0).astype(np.float32))
        return item


class FaceRoIDataset(Dataset):
    """Faces ``indices`` of ``source`` as the shared face model's cached RoI features
    (:mod:`mbv1.faces.roi_features`, ``float16 [N, V, C, P, P]``: the frame as it is, mirrored,
    then the shrunk views, odd ones mirrored) with their teacher targets.

    Items: ``image [C, P, P]`` (RoI features, float32: what the RoI head reads), ``index``,
    ``flip`` and ``t_*`` as in :class:`FaceCropDataset`. In training each item is one of the
    V views, uniformly (the unmirrored ones only without ``hflip``), seeded by
    ``(seed, epoch, index)``; otherwise view 0.
    """

    def __init__(self, source, indices: list[int], features: np.ndarray,
                 targets: dict[str, np.ndarray], train: bool = False, seed: int = 0,
                 hflip: bool = True):
        self.source, self.indices, self.features = source, list(indices), features
        self.targets, self.train, self.seed, self.hflip, self.epoch = targets, train, seed, hflip, 0
        self.split = "val"

    set_epoch = FaceCropDataset.set_epoch
    __len__ = FaceCropDataset.__len__
    _rng = FaceCropDataset._rng

    def __getitem__(self, i: int) -> dict:
        j = self.indices[i]
        view = 0
        if self.train:
            step = 1 if self.hflip else 2
            view = step * int(self._rng(i).integers(self.features.shape[1] // step))
        flip = view % 2
        item = {"image": torch.from_numpy(np.asarray(self.features[j, view], np.float32)),
                "index": j, "flip": flip}
        for name, arr in self.targets.items():
            item[f"t_{name}"] = torch.from_numpy(np.asarray(arr[j, flip], np.float32))
        return item


def degrade(crop: np.ndarray, rng: np.random.Generator, p: float, jitter: float) -> np.ndarray:
    """Random low resolution (probability ``p``) and brightness/contrast jitter of a crop."""
    import cv2

    out = crop
    if p > 0 and rng.random() < p:
        h, w = crop.shape[:2]
        s = rng.uniform(0.08, 0.6)
        small = cv2.resize(crop, (max(4, round(w * s)), max(4, round(h * s))),
                           interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if jitter > 0:
        b = rng.uniform(-jitter, jitter) * 255
        c = 1 + rng.uniform(-jitter, jitter)
        mean = out.mean()
        out = np.clip((out.astype(np.float32) - mean) * c + mean + b, 0, 255).astype(np.uint8)
    return out


# --------------------------------------------------------------------------- CelebA


@dataclass
class CelebA:
    """CelebA's lists: ``files [N]``, ``attributes [N, 40]`` (+1 / −1), ``names [40]``,
    ``partition [N]`` (0 train, 1 val, 2 test), ``identity [N]`` (or None)."""

    root: Path
    files: list[str]
    names: list[str]
    attributes: np.ndarray
    partition: np.ndarray
    identity: np.ndarray | None


def is_celeba(root: str | Path) -> bool:
    root = Path(root)
    return (root / CELEBA_ATTR).is_file() and (root / CELEBA_IMAGES).is_dir()


def _lines(path: Path) -> list[str]:
    try:
        return [ln for ln in path.read_text().splitlines() if ln.strip()]
    except OSError as e:
        raise MBV1Error(f"cannot read {path}: {e}") from None


def read_celeba(root: str | Path) -> CelebA:
    """Read CelebA as distributed (module docstring). Raises a one-line :class:`MBV1Error`
    naming the file and line of any malformed entry."""
    root = Path(root)
    attr = root / CELEBA_ATTR
    if not attr.is_file():
        raise MBV1Error(f"{root} is not CelebA: no {CELEBA_ATTR} (expected {CELEBA_ATTR}, "
                        f"{CELEBA_PARTITION} and {CELEBA_IMAGES}/)")
    lines = _lines(attr)
    if len(lines) < 2:
        raise MBV1Error(f"{attr}: expected a count line and a line of attribute names")
    try:
        count = int(lines[0].split()[0])
    except (ValueError, IndexError):
        raise MBV1Error(f"{attr}:1: expected the number of images, got {lines[0]!r}") from None
    names = lines[1].split()
    files, rows = [], []
    for n, ln in enumerate(lines[2:], 3):
        parts = ln.split()
        if len(parts) != len(names) + 1 or any(v not in ("1", "-1", "0") for v in parts[1:]):
            raise MBV1Error(f"{attr}:{n}: expected a file name and {len(names)} values of ±1, "
                            f"got {ln[:60]!r}")
        files.append(parts[0])
        rows.append([int(v) for v in parts[1:]])
    if len(files) != count:
        raise MBV1Error(f"{attr}: header says {count} images, the file lists {len(files)}")
    index = {f: i for i, f in enumerate(files)}
    partition = np.zeros(len(files), np.int64)
    part_file = root / CELEBA_PARTITION
    if part_file.is_file():
        seen = np.zeros(len(files), bool)
        for n, ln in enumerate(_lines(part_file), 1):
            parts = ln.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2") or parts[0] not in index:
                raise MBV1Error(f"{part_file}:{n}: expected '<file in {CELEBA_ATTR}> 0|1|2', "
                                f"got {ln[:60]!r}")
            partition[index[parts[0]]] = int(parts[1])
            seen[index[parts[0]]] = True
        if not seen.all():
            raise MBV1Error(f"{part_file} has no partition for {files[int((~seen).argmax())]}")
    else:
        raise MBV1Error(f"{root} has no {CELEBA_PARTITION}: CelebA's official split is needed")
    identity = None
    id_file = root / CELEBA_IDENTITY
    if id_file.is_file():
        identity = np.zeros(len(files), np.int64)
        for n, ln in enumerate(_lines(id_file), 1):
            parts = ln.split()
            if len(parts) != 2 or parts[0] not in index or not parts[1].isdigit():
                raise MBV1Error(f"{id_file}:{n}: expected '<file> <identity number>', got {ln[:60]!r}")
            identity[index[parts[0]]] = int(parts[1])
    return CelebA(root, files, names, np.asarray(rows, np.int8), partition, identity)


class CelebAFaces:
    """CelebA images as a crop source (the interface of a CropCache: ``records``, ``crop(i)``,
    ``attr_crop(i)``, ``root`` for cached teacher targets)."""

    TOP = 20  # img_align_celeba is 178x218: the face sits in the square starting at row 20

    def __init__(self, celeba: CelebA, cache_root: Path, size: int = 160):
        from mbv1.faces.cache import FaceRecord

        self.celeba, self.root, self.size = celeba, Path(cache_root), size
        self.root.mkdir(parents=True, exist_ok=True)
        ident = celeba.identity
        self.records = [FaceRecord(id=f, source="celeba", file=f, frame=i, time_s=None, face=0,
                                   box_xyxy=[0, 0, 0, 0], score=1.0, landmarks=None,
                                   method="celeba-aligned", attr_box=None,
                                   identity=None if ident is None else f"celeba#{ident[i]}",
                                   group="celeba")
                        for i, f in enumerate(celeba.files)]
        self.meta = {"pipeline": {"policy": "celeba-aligned", "size": size}}

    def __len__(self) -> int:
        return len(self.records)

    def crop(self, i: int) -> np.ndarray:
        import cv2

        from mbv1.datasets.images import load_rgb

        img = np.asarray(load_rgb(self.celeba.root / CELEBA_IMAGES / self.celeba.files[i]))
        h, w = img.shape[:2]
        side = min(h, w)
        top = min(self.TOP, h - side) if h > w else 0
        left = (w - side) // 2
        sq = img[top:top + side, left:left + side]
        return cv2.resize(np.ascontiguousarray(sq), (self.size, self.size),
                          interpolation=cv2.INTER_AREA if side > self.size else cv2.INTER_LINEAR)

    def attr_crop(self, i: int) -> None:
        return None
