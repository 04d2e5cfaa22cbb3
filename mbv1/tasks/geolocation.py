"""Table 11: PlaNet photo geolocation retrained on MobileNet — the engine's Task.

``mbv1 train geolocation --data CSV_OR_DIR``: the photos (:mod:`mbv1.geo.sources`: a
``path,lat,lon`` CSV, a folder of photos with EXIF GPS, or a folder with train.csv/test.csv),
PlaNet's adaptive S2 partition built from the *training* coordinates with the ``partition``
section (``t1``, ``t2``, ``min_level``, ``max_level``; or a prebuilt ``partition.file``), a
MobileNetV1 + linear classifier over the cells (:mod:`mbv1.geo.model`), cross-entropy over
cells (``partition.smoothing`` > 0 spreads that much target mass onto the true cell's
same-level neighbours). Training photos outside every kept cell (cells under ``t2`` photos)
are left out of training; test photos outside every cell are still scored by distance.

The partition travels with the weights: its sha256 and canonical CSV text are in every
checkpoint's meta (and ``partition.csv`` is written into the run folder when the engine tells
the task its folder), and a model refuses any other partition with a one-line error.

Evaluation: the share of test photos within 1 / 25 / 200 / 750 / 2500 km of the truth
(haversine, R = 6371 km), median and mean error, cell top-1/top-5, beside Table 11's three
columns and the prior baseline (every photo placed at the most populous training cell), per
continent of the true location. The primary metric (best.pt) is ``within_2500km``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from mbv1.backbone import set_bn_momentum
from mbv1.datasets import augment
from mbv1.engine.config import DataConfig
from mbv1.engine.task import Datasets, Metrics, Task, row_dict
from mbv1.errors import MBV1Error
from mbv1.geo import sources
from mbv1.geo.cells import (
    Partition,
    PartitionConfig,
    build_partition,
    partition_from_meta,
    partition_info,
)
from mbv1.geo.metrics import (
    THRESHOLDS_KM,
    GeoMetrics,
    format_continents,
    format_table11,
    geo_metrics,
)
from mbv1.geo.model import (  # noqa: F401  (the model API is re-exported here)
    PAPER_ROW,
    GeoLoss,
    GeoModel,
    GeoOutputs,
    GeoPrediction,
    build_geo_loss,
    build_geo_model,
    build_model,
    check_partition,
    collect,
    decode,
    evaluate,
    logits_to_latlon,
    predict,
    prior_metrics,
)
from mbv1.paper import TABLE11

PAPER_METRIC = "Im2GPS % within 2500 km (continent)"
PHOTO_DETAILS_MAX = 25  # evaluations this small list every photo (path, truth, error)


@dataclass
class GeoDataConfig(DataConfig):
    """``data`` section: ``path`` = training CSV / EXIF folder / set folder, ``val_path`` = the
    test CSV or folder (else the set folder's test.csv, else a held-out ``val_split``)."""


@dataclass
class PartitionSection:
    """``partition`` section: PlaNet's adaptive S2 partition (:mod:`mbv1.geo.cells`) and the
    loss's smoothing onto neighbouring cells."""

    t1: int = 10_000  # split a cell holding more than t1 training photos (PlaNet: 10,000)
    t2: int = 50  # drop cells holding fewer than t2 (PlaNet: 50)
    min_level: int = 0  # coarsest S2 level (0: the six cube faces)
    max_level: int = 30  # finest S2 level
    file: str | None = None  # a prebuilt partition (.csv/.json) instead of building one
    smoothing: float = 0.0  # target mass spread onto the true cell's same-level neighbours


def _main_rank() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _say(line: str) -> None:
    if _main_rank():
        print(line, flush=True)


class GeolocationTask(Task):
    """PlaNet on MobileNetV1 (Table 11): classification over adaptive S2 cells."""

    name = "geolocation"
    sections: ClassVar[dict[str, type]] = {"data": GeoDataConfig, "partition": PartitionSection}
    primary_metric = "within_2500km"
    paper_metric = PAPER_METRIC

    partition: Partition | None = None

    # -- data ----------------------------------------------------------------------------
    def _partition(self, train: sources.Source) -> Partition:
        p = self.cfg.partition
        if self.resume_meta and self.resume_meta.get("partition_csv"):
            # A resumed run keeps the partition its weights were trained with, whatever the data.
            part = partition_from_meta(self.resume_meta, "the resumed run")
            _say(f"partition: {len(part)} cells from the resumed run (sha256 {part.sha256[:16]}…)")
            return part
        if p.file:
            part = Partition.load(p.file)
            _say(f"partition: {len(part)} cells from {p.file} (sha256 {part.sha256[:16]}…)")
            return part
        config = PartitionConfig(p.t1, p.t2, p.min_level, p.max_level)
        part = build_partition(train.records.lat, train.records.lon, config)
        _say(f"partition: {len(part):,} cells at S2 levels {part.levels.min()}–{part.levels.max()} "
             f"built from {len(train.records):,} training photos (t1={p.t1}, t2={p.t2}, levels "
             f"{p.min_level}–{p.max_level}); sha256 {part.sha256[:16]}…")
        return part

    def build_datasets(self) -> Datasets:
        d, t = self.cfg.data, self.cfg.train
        if t.label_smoothing:
            raise MBV1Error("train.label_smoothing is uniform smoothing over all cells; geolocation "
                            "smooths onto neighbouring cells: use partition.smoothing instead")
        splits = sources.training_splits(d.path, d.val_path, d.val_split, d.split_seed)
        for src in (splits.train, splits.val):
            if src is not None:
                sources.report_skipped(src)
        part = self._partition(splits.train)
        rec = splits.train.records
        res = self.cfg.model.resolution
        train_tf = augment.train_transform(res, d.augment, d.crop_scale, d.hflip, d.color_jitter,
                                           d.eval_crop)
        train = sources.partition_dataset(rec, part, train_tf, d.mean, d.std, drop_unassigned=True,
                                          seed=t.seed, on_bad_image=d.on_bad_image,
                                          split=splits.train.name)
        if train.num_unassigned:
            _say(f"partition: {train.num_unassigned:,} of {len(rec):,} training photos lie in "
                 "cells under t2 photos (no class) and are left out of training")
        val = self._eval_dataset(splits.val, part) if splits.val is not None else None
        info = {**partition_info(part), "data_path": d.path, "val_path": d.val_path,
                "train_split": splits.train.name, "train_photos": len(rec),
                "train_photos_outside": train.num_unassigned}
        self.partition = part
        if self.run_dir is not None:
            self.save_partition(self.run_dir)
        return Datasets(train, val, info, splits.val.name if splits.val is not None else "none")

    def _eval_dataset(self, src: sources.Source, part: Partition) -> sources.GeoImageDataset:
        d, res = self.cfg.data, self.cfg.model.resolution
        return sources.partition_dataset(src.records, part, augment.eval_transform(res, d.eval_crop),
                                         d.mean, d.std, on_bad_image=d.on_bad_image,
                                         split=src.name)

    def build_eval_dataset(self, info: dict):
        """``--data`` as given to ``mbv1 eval``: the trained-on data → its evaluation split;
        anything else → all of it (a set folder → its test.csv)."""
        d = self.cfg.data
        if sources.same_path(d.path, info.get("data_path")) and \
                sources.same_path(d.val_path, info.get("val_path")):
            src = sources.training_splits(d.path, d.val_path, d.val_split, d.split_seed).val
            if src is None:
                raise MBV1Error(f"{d.path} has no evaluation split (data.val_split=0): pass "
                                "--data TEST_CSV_OR_DIR")
        else:
            src = sources.eval_source(d.path)
        sources.report_skipped(src)
        part = self.partition if self.partition is not None else partition_from_meta(info)
        ds = self._eval_dataset(src, part)
        return ds, src.name

    def save_partition(self, run_dir: str | Path) -> Path | None:
        """Write ``partition.csv`` (canonical form: ``sha256sum`` gives its hash) into a run
        folder; rank 0 only."""
        if self.partition is None or not _main_rank():
            return None
        return self.partition.save(Path(run_dir) / "partition.csv")

    # -- model ---------------------------------------------------------------------------
    @classmethod
    def cost_rows(cls) -> list:
        from mbv1.geo.costs import geo_cost_rows

        return geo_cost_rows()

    def build_model(self, info: dict) -> nn.Module:
        part = partition_from_meta(info)
        if self.cfg.partition.file:
            offered = Partition.load(self.cfg.partition.file)
            check_partition(offered, part.sha256, len(part), source="this checkpoint")
        self.partition = part
        model = set_bn_momentum(build_model(info, asdict(self.cfg.model)),
                                self.cfg.model.bn_momentum)
        self.loss_fn = build_geo_loss(part, self.cfg.partition.smoothing).to(self.device)
        return model

    def forward_loss(self, model, batch, teacher=None) -> dict[str, torch.Tensor]:
        return self.loss_fn(model(batch["image"]), batch["cell"])

    # -- evaluation ----------------------------------------------------------------------
    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        return self.to_device({"image": images})["image"]

    def evaluate(self, model, loader, teacher=None) -> Metrics:
        part = self.partition
        out = collect(model, loader, part, prepare=self._prepare)
        m = geo_metrics(out.pred_lat, out.pred_lon, out.true_lat, out.true_lon, continents=True)
        prior = prior_metrics(part, out.true_lat, out.true_lon, continents=None)
        values = {f"within_{km}km": m.within[km] for km in THRESHOLDS_KM}
        values.update(median_km=m.median_km, mean_km=m.mean_km, **out.cell_accuracy(),
                      images=float(len(out)))
        best = int(np.argmax(part.counts))
        details = {"table11": m.to_dict(), "prior": prior.to_dict(),
                   "prior_cell": {"token": part.tokens[best], "count": int(part.counts[best]),
                                  "ties": int((part.counts == part.counts[best]).sum()),
                                  "lat": float(part.centroid_lat[best]),
                                  "lon": float(part.centroid_lon[best])},
                   "outside": int((out.cells < 0).sum()), "num_cells": len(part),
                   "partition_sha256": part.sha256}
        if len(out) <= PHOTO_DETAILS_MAX:
            details["photos"] = _photo_details(out, getattr(loader.dataset, "records", None))
        return Metrics(values, self.primary_metric, getattr(loader.dataset, "split", "val"),
                       details=details)

    # -- reporting -----------------------------------------------------------------------
    def paper_rows(self, info: dict) -> list[dict]:
        row = replace(PAPER_ROW, metric=PAPER_METRIC, value=TABLE11["continent"][2])
        m = self.cfg.model
        note = (f"other data: the paper trains on PlaNet's 126 M photos (α=1.0, 224 px, ~10k "
                f"cells) and tests on Im2GPS; this run: {info.get('train_photos', '?')} photos, "
                f"{info.get('num_cells', '?')} cells, α={m.alpha}, {m.resolution} px")
        return [row_dict(row, comparable=False, note=note)]

    def describe(self, metrics: Metrics, info: dict) -> list[str]:
        d = metrics.details
        if "table11" not in d:
            return []
        ours, prior = GeoMetrics.from_dict(d["table11"]), GeoMetrics.from_dict(d["prior"])
        lines = [("Table 11 (Howard et al. 2017) beside mbv1 and the prior baseline (every photo "
                  "placed at the most populous training cell), % of photos within each distance:")]
        lines += format_table11(ours, "mbv1", {"prior": prior}, split=metrics.split).splitlines()
        pc = d["prior_cell"]
        from mbv1.geo.places import nearest_place

        ties = (f", tied with {pc['ties'] - 1:,} other cells: the lowest cell id is taken"
                if pc.get("ties", 1) > 1 else "")
        near = nearest_place(pc["lat"], pc["lon"]).name
        lines.append(f"partition: {d['num_cells']:,} cells, sha256 {d['partition_sha256'][:16]}…; "
                     f"prior cell {pc['token']} ({pc['count']:,} training photos{ties}; centroid "
                     f"{pc['lat']:.4f}, {pc['lon']:.4f}, near {near}); {d['outside']:,} test "
                     "photos outside every cell (scored by distance)")
        v = metrics.values
        lines.append(f"cell accuracy (photos inside a cell): top-1 {v.get('cell_top1', 0):.1f}%, "
                     f"top-5 {v.get('cell_top5', 0):.1f}%")
        if ours.per_continent:
            lines.append("per continent of the true location:")
            lines += format_continents(ours).splitlines()
        if d.get("photos"):
            lines.append("per photo (true position → predicted position, great-circle error):")
            for p in d["photos"]:
                lines.append(f"  {p['path']}: {p['true_lat']:.4f}, {p['true_lon']:.4f} → "
                             f"{p['pred_lat']:.4f}, {p['pred_lon']:.4f} ({p['place']}): "
                             f"{p['km']:,.1f} km")
        return lines


def _photo_details(out: GeoOutputs, records) -> list[dict]:
    from mbv1.geo.distance import haversine_km
    from mbv1.geo.places import place_index

    km = haversine_km(out.pred_lat, out.pred_lon, out.true_lat, out.true_lon)
    places = place_index().nearest_many(out.pred_lat, out.pred_lon)
    rows = []
    for i in range(len(out)):
        path = str(records.paths[out.index[i]]) if records is not None else str(out.index[i])
        pl = places[i]
        rows.append({"path": path, "true_lat": float(out.true_lat[i]),
                     "true_lon": float(out.true_lon[i]), "pred_lat": float(out.pred_lat[i]),
                     "pred_lon": float(out.pred_lon[i]), "km": float(km[i]),
                     "place": f"{pl.name}, {pl.country}"})
    return rows
