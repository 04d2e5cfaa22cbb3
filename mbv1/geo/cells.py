"""PlaNet's adaptive S2 partition of the globe: the classes of the geolocation task.

PlaNet (Weyand et al. 2016, used for the paper's Table 11) starts from the six S2 face cells,
splits a cell into its four children while it holds more than ``t1`` training photos, and drops
cells with fewer than ``t2`` photos (published t1 = 10,000, t2 = 50 → 26,263 cells). Photos in a
dropped cell have no class (``assign`` answers -1) and are left out of training.

A partition is a table of cells sorted by S2 cell id (the Hilbert-curve order), one class index
per row. Its canonical form is a CSV (``token,level,count,centroid_lat,centroid_lon,
center_lat,center_lon``, coordinates with 6 decimals, ``\\n`` line ends); the partition's
``sha256`` is the hash of exactly those bytes, so ``sha256sum cells.csv`` agrees with it and a
checkpoint can store it to refuse a mismatched partition. A JSON form adds the build settings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import s2sphere

from mbv1.errors import MBV1Error
from mbv1.geo import s2
from mbv1.geo.distance import spherical_mean

COLUMNS = ("token", "level", "count", "centroid_lat", "centroid_lon", "center_lat", "center_lon")
FORMAT = "mbv1-s2-partition"


@dataclass(frozen=True)
class PartitionConfig:
    """Build settings. ``t1``: split a cell holding more than this many photos. ``t2``: drop a
    cell holding fewer. Cells are never coarser than ``min_level`` (0 = the six faces) nor finer
    than ``max_level`` (30 = S2 leaves, ~1 cm)."""

    t1: int = 10_000
    t2: int = 50
    min_level: int = 0
    max_level: int = 30

    def __post_init__(self):
        if not (isinstance(self.t1, int) and isinstance(self.t2, int) and 1 <= self.t2 <= self.t1):
            raise MBV1Error(f"need integers 1 <= t2 <= t1, got t1={self.t1}, t2={self.t2}")
        if not 0 <= self.min_level <= self.max_level <= s2.MAX_LEVEL:
            raise MBV1Error(f"need 0 <= min_level <= max_level <= 30, got min_level="
                            f"{self.min_level}, max_level={self.max_level}")


def _check_coords(lat: np.ndarray, lon: np.ndarray) -> None:
    bad = ~(np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise MBV1Error(f"point {k} has invalid coordinates lat={lat[k]}, lon={lon[k]}: "
                        "latitude must be in [-90, 90] and longitude in [-180, 180]")


class Partition:
    """Disjoint S2 cells, one class each, in cell-id order.

    Attributes:
        ids: ``[C]`` uint64 S2 cell ids.
        levels: ``[C]`` int64 S2 levels.
        counts: ``[C]`` int64 training photos per cell.
        centroid_lat, centroid_lon: ``[C]`` degrees, spherical mean of the cell's photos (the
            predicted location when the cell wins, as in PlaNet).
        center_lat, center_lon: ``[C]`` degrees, the S2 cell's own centre.
        config: the :class:`PartitionConfig` it was built with, if known.
    """

    def __init__(self, ids, levels, counts, centroid_lat, centroid_lon, center_lat=None,
                 center_lon=None, config: PartitionConfig | None = None):
        self.ids = np.asarray(ids, dtype=np.uint64).ravel()
        if len(self.ids) == 0:
            raise MBV1Error("the partition has no cells: lower t2 or use more training photos")
        if np.any(self.ids[1:] <= self.ids[:-1]):
            raise MBV1Error("partition cells must be listed once each, in increasing cell-id "
                            "order (the order of the CSV that `Partition.save` writes)")
        self.levels = np.asarray(levels, dtype=np.int64).ravel()
        self.counts = np.asarray(counts, dtype=np.int64).ravel()
        bad = [k for k, (i, lv) in enumerate(zip(self.ids, self.levels))
               if not s2.is_valid(int(i)) or s2.level_of(int(i)) != lv]
        if bad:
            raise MBV1Error(f"cell {bad[0]} ({s2.to_token(int(self.ids[bad[0]]))}) is not a valid "
                            f"S2 cell of level {self.levels[bad[0]]}")
        if center_lat is None or center_lon is None:
            centers = [s2sphere.CellId(int(i)).to_lat_lng() for i in self.ids]
            center_lat = [c.lat().degrees for c in centers]
            center_lon = [c.lng().degrees for c in centers]
        # Round on the way in, so that saving and loading gives back identical bytes and hash.
        def r(a):
            return np.round(np.asarray(a, dtype=np.float64).ravel(), 6)

        self.centroid_lat, self.centroid_lon = r(centroid_lat), r(centroid_lon)
        self.center_lat, self.center_lon = r(center_lat), r(center_lon)
        self.config = config
        self._range_min = s2.range_min(self.ids, self.levels)
        self._range_max = s2.range_max(self.ids, self.levels)
        if np.any(self._range_min[1:] <= self._range_max[:-1]):
            raise MBV1Error("the partition's cells overlap (one contains another)")

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return (f"Partition({len(self)} cells, levels {self.levels.min()}–{self.levels.max()}, "
                f"{int(self.counts.sum())} photos, sha256 {self.sha256[:12]})")

    @property
    def tokens(self) -> list[str]:
        """S2 tokens of the cells, in class order."""
        return [s2.to_token(i) for i in self.ids]

    # --- lookup -----------------------------------------------------------------------------

    def assign(self, lat, lon):
        """Class index of the cell containing each point, -1 where no cell does.

        Args:
            lat, lon: degrees, scalars or arrays of the same shape ``[N]``.

        Returns:
            An int for scalar input, else ``[N]`` int64. Raises MBV1Error on NaN or
            out-of-range coordinates.
        """
        scalar = np.ndim(lat) == 0 and np.ndim(lon) == 0
        lat = np.atleast_1d(np.asarray(lat, dtype=np.float64)).ravel()
        lon = np.atleast_1d(np.asarray(lon, dtype=np.float64)).ravel()
        _check_coords(lat, lon)
        leaves = s2.leaf_ids(lat, lon)
        # Cells are disjoint and sorted, so the only candidate is the last one starting at or
        # before the leaf.
        k = np.searchsorted(self._range_min, leaves, side="right") - 1
        inside = (k >= 0) & (leaves <= self._range_max[np.maximum(k, 0)])
        out = np.where(inside, k, -1).astype(np.int64)
        return int(out[0]) if scalar else out

    def neighbours(self) -> np.ndarray:
        """Edge neighbours of each cell that are themselves cells of the partition.

        S2's four edge neighbours at the cell's own level (s2sphere ``get_edge_neighbors``);
        a neighbour counts only if that exact cell is in the partition (a neighbouring area
        covered by finer or coarser cells does not). Used for label smoothing.

        Returns:
            ``[C, 4]`` int64 class indices, -1 where the neighbour is not a cell.
        """
        index = {int(i): k for k, i in enumerate(self.ids)}
        out = np.full((len(self), 4), -1, dtype=np.int64)
        for k, cid in enumerate(self.ids):
            for m, n in enumerate(s2sphere.CellId(int(cid)).get_edge_neighbors()):
                out[k, m] = index.get(n.id(), -1)
        return out

    # --- serialisation ----------------------------------------------------------------------

    def rows(self) -> list[tuple]:
        """The table as tuples in :data:`COLUMNS` order."""
        return [(s2.to_token(i), int(lv), int(c), float(a), float(b), float(x), float(y))
                for i, lv, c, a, b, x, y in zip(self.ids, self.levels, self.counts,
                                                self.centroid_lat, self.centroid_lon,
                                                self.center_lat, self.center_lon)]

    def to_csv_bytes(self) -> bytes:
        """The canonical CSV form (the bytes :attr:`sha256` hashes)."""
        lines = [",".join(COLUMNS)]
        for t, lv, c, a, b, x, y in self.rows():
            lines.append(f"{t},{lv},{c},{a:.6f},{b:.6f},{x:.6f},{y:.6f}")
        return ("\n".join(lines) + "\n").encode("ascii")

    @property
    def sha256(self) -> str:
        """Hex sha256 of :meth:`to_csv_bytes`: identifies the classes and their locations."""
        return hashlib.sha256(self.to_csv_bytes()).hexdigest()

    def save(self, path: str | Path) -> Path:
        """Write ``.csv`` (canonical table) or ``.json`` (table plus build settings and hash)."""
        path = Path(path)
        if path.suffix.lower() == ".csv":
            data = self.to_csv_bytes()
        elif path.suffix.lower() == ".json":
            doc = {"format": FORMAT, "version": 1, "sha256": self.sha256,
                   "config": None if self.config is None else asdict(self.config),
                   "columns": list(COLUMNS), "cells": self.rows()}
            data = (json.dumps(doc, indent=None, separators=(",", ":")) + "\n").encode()
        else:
            raise MBV1Error(f"partition file must end in .csv or .json, got {path.name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Partition:
        """Read a partition written by :meth:`save` (``.csv`` or ``.json``)."""
        path = Path(path)
        if not path.is_file():
            raise MBV1Error(f"partition file not found: {path}")
        config = None
        try:
            if path.suffix.lower() == ".json":
                doc = json.loads(path.read_text())
                if doc.get("format") != FORMAT or doc.get("columns") != list(COLUMNS):
                    raise MBV1Error(f"{path} is not an mbv1 S2 partition (format {FORMAT})")
                rows = doc["cells"]
                config = PartitionConfig(**doc["config"]) if doc.get("config") else None
            else:
                lines = path.read_text().splitlines()
                if not lines or lines[0].strip() != ",".join(COLUMNS):
                    raise MBV1Error(f"{path}: first line must be the header {','.join(COLUMNS)}")
                rows = [ln.split(",") for ln in lines[1:] if ln.strip()]
            short = [k for k, r in enumerate(rows) if len(r) != len(COLUMNS)]
            if short:
                raise MBV1Error(f"cell row {short[0] + 1} has {len(rows[short[0]])} fields, "
                                f"expected {len(COLUMNS)}")
            ids = [s2.from_token(r[0]) for r in rows]
            cols = list(zip(*rows)) if rows else [()] * len(COLUMNS)
            part = cls(ids, [int(v) for v in cols[1]], [int(v) for v in cols[2]],
                       *([float(v) for v in cols[k]] for k in range(3, 7)), config=config)
        except MBV1Error as e:
            raise MBV1Error(f"{path}: {e}") from None
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise MBV1Error(f"cannot read partition {path}: {e}") from None
        if path.suffix.lower() == ".json" and doc.get("sha256") not in (None, part.sha256):
            raise MBV1Error(f"{path}: stored sha256 does not match its cells (edited by hand?)")
        return part


def build_partition(lat, lon, config: PartitionConfig | None = None, **kw) -> Partition:
    """Build PlaNet's adaptive partition from training coordinates.

    Starting from every cell at ``min_level`` that holds a photo, a cell with more than ``t1``
    photos is replaced by its (non-empty) children, down to ``max_level``; then cells with
    fewer than ``t2`` photos are dropped.

    Args:
        lat, lon: ``[N]`` degrees of the training photos.
        config: a :class:`PartitionConfig`; or pass its fields (``t1=…, t2=…``) as keywords.

    Returns:
        The :class:`Partition`; its ``counts`` are photos per kept cell and its centroids the
        spherical means of those photos.
    """
    config = config or PartitionConfig(**kw)
    lat = np.atleast_1d(np.asarray(lat, dtype=np.float64)).ravel()
    lon = np.atleast_1d(np.asarray(lon, dtype=np.float64)).ravel()
    _check_coords(lat, lon)
    pending = s2.leaf_ids(lat, lon)
    kept_ids, kept_levels, kept_counts = [], [], []
    level = config.min_level
    while pending.size:
        cells, counts = np.unique(s2.parent_ids(pending, level), return_counts=True)
        split = counts > config.t1 if level < config.max_level else np.zeros(len(cells), bool)
        kept_ids.append(cells[~split])
        kept_counts.append(counts[~split])
        kept_levels.append(np.full((~split).sum(), level))
        pending = pending[np.isin(s2.parent_ids(pending, level), cells[split])]
        level += 1
    ids, levels, counts = (np.concatenate(a) for a in (kept_ids, kept_levels, kept_counts))
    keep = counts >= config.t2
    if not keep.any():
        raise MBV1Error(f"no cell holds t2={config.t2} of the {len(lat)} photos: lower t2")
    order = np.argsort(ids[keep])
    ids, levels, counts = ids[keep][order], levels[keep][order], counts[keep][order]
    # Centroids: assign every photo through a provisional partition, then average per cell.
    provisional = Partition(ids, levels, counts, np.zeros(len(ids)), np.zeros(len(ids)),
                            np.zeros(len(ids)), np.zeros(len(ids)))
    cls = provisional.assign(lat, lon)
    inside = cls >= 0
    c_lat, c_lon = spherical_mean(lat[inside], lon[inside], cls[inside], len(ids))
    if not np.array_equal(np.bincount(cls[inside], minlength=len(ids)), provisional.counts):
        raise RuntimeError("internal error: partition counts disagree with assignment")
    return Partition(provisional.ids, provisional.levels, provisional.counts, c_lat, c_lon,
                     config=config)


def partition_info(partition: Partition) -> dict:
    """The checkpoint meta of a partition: hash, canonical CSV text, settings, class tokens."""
    cfg = partition.config
    return {"labels": partition.tokens, "num_classes": len(partition), "num_cells": len(partition),
            "partition_sha256": partition.sha256,
            "partition_csv": partition.to_csv_bytes().decode("ascii"),
            "partition_config": None if cfg is None else {
                "t1": cfg.t1, "t2": cfg.t2, "min_level": cfg.min_level,
                "max_level": cfg.max_level}}


def partition_from_meta(meta: dict, source: str = "the checkpoint") -> Partition:
    """The partition stored in a checkpoint meta, verified against its stored sha256."""
    text, sha = meta.get("partition_csv"), meta.get("partition_sha256")
    if not text or not sha:
        raise MBV1Error(f"{source} holds no partition (partition_csv / partition_sha256 in its "
                        "meta): it is not a geolocation checkpoint of mbv1")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "partition.csv"
        path.write_text(text)
        part = Partition.load(path)
    if part.sha256 != sha:
        raise MBV1Error(f"{source}: the stored partition's cells hash to {part.sha256[:16]}…, not "
                        f"the recorded {sha[:16]}… (edited meta?)")
    return part
