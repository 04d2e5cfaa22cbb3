"""Where the geolocation task's photos come from (``--data``) and the Dataset the engine reads.

``--data`` (``data.path``) may be:

- a ``path,lat,lon`` CSV (:func:`mbv1.geo.data.read_csv`);
- a folder of photos with GPS in their EXIF (:func:`mbv1.geo.data.scan_folder`); photos without
  a usable position are reported with the reason and left out, never guessed;
- a set folder holding ``train.csv`` (and usually ``test.csv``), as ``mbv1 data geo-synthetic``
  writes and as Im2GPS-style benchmarks are commonly shared.

The evaluation split is, in order: ``data.val_path`` (a CSV or an EXIF folder), the set
folder's ``test.csv``, or a held-out ``data.val_split`` fraction of the training photos drawn
with ``data.split_seed``. Every split has a name that says what it is, e.g. ``test.csv of
data/geo-synth (300 photos)``, printed beside every number.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from mbv1.errors import MBV1Error
from mbv1.geo.data import GeoRecords, load_image, read_csv, scan_folder

TRAIN_CSV, TEST_CSV = "train.csv", "test.csv"


@dataclass
class Source:
    """Photos read from one ``--data`` argument; ``skipped``: ``[(path, reason)]`` of photos
    left out (no usable GPS)."""

    records: GeoRecords
    name: str
    skipped: list[tuple[Path, str]] = field(default_factory=list)


@dataclass
class Splits:
    """Training photos and the evaluation split (``val`` is ``None`` when there is none)."""

    train: Source
    val: Source | None


def is_set_folder(path: str | Path) -> bool:
    """A folder with ``train.csv`` (and usually ``test.csv``) in ``path,lat,lon`` form."""
    return Path(path).is_dir() and (Path(path) / TRAIN_CSV).is_file()


def read_source(path: str | Path) -> Source:
    """A CSV file or a folder of EXIF-geotagged photos (scanned recursively)."""
    p = Path(path)
    if p.is_file():
        rec = read_csv(p)
        return Source(rec, f"{path} ({len(rec):,} photos)")
    if p.is_dir():
        rec, skipped = scan_folder(p)
        if len(rec) == 0:
            why = f"; first: {skipped[0][0].name}: {skipped[0][1]}" if skipped else ""
            raise MBV1Error(f"no photo in {path} has a GPS position in its EXIF ({len(skipped)} "
                            f"images without one{why}); pass a path,lat,lon CSV instead")
        extra = f", {len(skipped):,} without GPS left out" if skipped else ""
        return Source(rec, f"EXIF GPS photos of {path} ({len(rec):,} photos{extra})", skipped)
    raise MBV1Error(f"geolocation data not found: {path} (pass a path,lat,lon CSV, a folder of "
                    "photos with EXIF GPS, or a folder with train.csv/test.csv)")


def held_out(source: Source, fraction: float, seed: int) -> tuple[Source, Source | None]:
    """Split ``source`` into (train, held-out ``fraction``) with a fixed seed."""
    n = len(source.records)
    if not 0 <= fraction < 1:
        raise MBV1Error(f"data.val_split must be in [0, 1); got {fraction}")
    n_val = round(n * fraction)
    if n_val == 0:
        return source, None
    if n_val >= n:
        raise MBV1Error(f"data.val_split={fraction} leaves no training photo of {n}")
    perm = np.random.default_rng(seed).permutation(n)
    val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    base = source.name.split(" (")[0]
    train = Source(source.records.subset(train_idx),
                   f"{base} minus a held-out {fraction:g} ({n - n_val:,} photos)", source.skipped)
    val = Source(source.records.subset(val_idx),
                 f"held-out {fraction:g} of {base} (seed {seed}, {n_val:,} photos)")
    return train, val


def training_splits(path: str | None, val_path: str | None = None, val_split: float = 0.1,
                    split_seed: int = 0) -> Splits:
    """The training photos and evaluation split of ``data.*`` (module docstring)."""
    if not path:
        raise MBV1Error("task geolocation needs data: pass --data CSV_OR_DIR (a path,lat,lon "
                        "CSV, a folder of photos with EXIF GPS, or a folder with train.csv and "
                        "test.csv such as `mbv1 data geo-synthetic` writes)")
    if is_set_folder(path):
        rec = read_csv(Path(path) / TRAIN_CSV)
        train = Source(rec, f"{TRAIN_CSV} of {path} ({len(rec):,} photos)")
        if val_path:
            return Splits(train, read_source(val_path))
        if (Path(path) / TEST_CSV).is_file():
            return Splits(train, eval_source(path))
        return Splits(*held_out(train, val_split, split_seed))
    train = read_source(path)
    if val_path:
        return Splits(train, read_source(val_path))
    return Splits(*held_out(train, val_split, split_seed))


def eval_source(path: str | Path) -> Source:
    """Everything ``path`` holds as a test set: a CSV, an EXIF folder, or a set folder's
    ``test.csv``."""
    if is_set_folder(path):
        if not (Path(path) / TEST_CSV).is_file():
            raise MBV1Error(f"{path} has {TRAIN_CSV} but no {TEST_CSV}: pass the test CSV or "
                            "folder itself")
        rec = read_csv(Path(path) / TEST_CSV)
        return Source(rec, f"{TEST_CSV} of {path} ({len(rec):,} photos)")
    return read_source(path)


def same_path(a: str | None, b: str | None) -> bool:
    """Whether two ``data.*`` paths name the same file or folder (``None`` only equals ``None``)."""
    if not a or not b:
        return not a and not b
    return os.path.realpath(a) == os.path.realpath(b)


def report_skipped(source: Source, limit: int = 10) -> None:
    """Name the photos left out for lack of GPS on stderr (rank 0 only): never guessed."""
    if not source.skipped or int(os.environ.get("RANK", "0")) != 0:
        return
    print(f"warning: {len(source.skipped):,} photo(s) have no usable EXIF GPS position and are "
          "left out (not guessed):", file=sys.stderr)
    for p, why in source.skipped[:limit]:
        print(f"  {p}: {why}", file=sys.stderr)
    if len(source.skipped) > limit:
        print(f"  ... and {len(source.skipped) - limit:,} more", file=sys.stderr)
    sys.stderr.flush()


class GeoImageDataset(Dataset):
    """Geotagged photos for the engine: items ``{"image": [3, R, R] float, "cell": int (-1
    outside every cell), "lat": float, "lon": float, "index": int}``.

    Args:
        records: the photos and their true positions.
        cells: ``[N]`` class of each photo in the partition (-1: outside every cell).
        transform: a :class:`mbv1.datasets.augment.Transform` (HxWx3 uint8, seed -> uint8).
        mean, std: normalisation (RGB, fractions of 255).
        seed: ``train.seed`` for per-sample augmentation; ``None`` for evaluation.
        on_bad_image: ``skip`` (report once, item ``None``) or ``fail``.
        split: the split's name, reported beside every number.
    """

    def __init__(self, records: GeoRecords, cells: np.ndarray, transform, mean, std,
                 seed: int | None = None, on_bad_image: str = "skip", split: str = ""):
        if len(cells) != len(records):
            raise ValueError("one cell per record")
        self.records = records
        self.cells = np.asarray(cells, dtype=np.int64)
        self.transform = transform
        self.mean, self.std = tuple(mean), tuple(std)
        self.seed = seed
        self.on_bad_image = on_bad_image
        self.split = split
        self.epoch = 0
        self._reported: set[str] = set()

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Called by the engine before each epoch: augmentation seeds depend on it."""
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict | None:
        from mbv1.datasets.augment import to_tensor
        from mbv1.seeding import sample_seed

        path = self.records.paths[index]
        try:
            img = load_image(path)
        except MBV1Error as e:
            if self.on_bad_image == "fail":
                raise MBV1Error(f"{e} (data.on_bad_image=fail; set it to skip to go on)") from None
            if str(path) not in self._reported:
                self._reported.add(str(path))
                print(f"warning: skipping {e}", file=sys.stderr, flush=True)
            return None
        seed = None if self.seed is None else sample_seed(self.seed, self.epoch, index)
        image = self.transform(np.asarray(img), seed)
        return {"image": to_tensor(image, self.mean, self.std), "cell": int(self.cells[index]),
                "lat": float(self.records.lat[index]), "lon": float(self.records.lon[index]),
                "index": index}


def partition_dataset(records: GeoRecords, partition, transform, mean=(0.5, 0.5, 0.5),
                      std=(0.5, 0.5, 0.5), drop_unassigned: bool = False, **kw) -> GeoImageDataset:
    """A :class:`GeoImageDataset` whose classes are ``partition``'s cells: photos outside
    every cell keep class -1 (evaluation: only distances matter) or, with
    ``drop_unassigned``, are left out (training). ``kw``: seed, on_bad_image, split.

    Raises:
        MBV1Error: training (``drop_unassigned``) and no photo lies in a cell of the partition.
    """
    cells = partition.assign(records.lat, records.lon)
    inside = cells >= 0
    if drop_unassigned and not inside.any():
        raise MBV1Error(f"no training photo lies in a cell of the partition "
                        f"({partition.sha256[:16]}…): was it built from this data?")
    if drop_unassigned:
        records, cells = records.subset(inside), cells[inside]
    ds = GeoImageDataset(records, cells, transform, mean, std, **kw)
    ds.num_unassigned = int((~inside).sum())
    return ds
