"""``mbv1 geolocate IMAGE...``: where was each photo taken, according to a trained checkpoint.

For every image: the predicted location (centroid of the training photos in the most probable
cell, as PlaNet), the nearest GeoNames city with its country, the top-k cells with their
probabilities and, when the photo itself carries EXIF GPS, that position and the great-circle
error of the prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass
class Located:
    """One image's answer (``error`` set, the rest empty, when the image cannot be read).

    Attributes:
        path: the image.
        lat, lon: predicted location, degrees.
        place: nearest named city (:class:`mbv1.geo.places.Place`).
        cells: top-k ``{"token", "index", "level", "prob", "lat", "lon"}`` (lat/lon: the
            cell's photo centroid), most probable first.
        exif: the photo's own EXIF GPS ``(lat, lon)``, if any.
        error_km: great-circle distance from ``exif`` to the prediction.
    """

    path: str
    lat: float | None = None
    lon: float | None = None
    place: object | None = None
    cells: list[dict] | None = None
    exif: tuple[float, float] | None = None
    error_km: float | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        pl = self.place
        return {"path": self.path, "error": self.error, "lat": self.lat, "lon": self.lon,
                "place": None if pl is None else {
                    "name": pl.name, "country": pl.country, "country_code": pl.country_code,
                    "continent": pl.continent, "distance_km": round(pl.distance_km, 3)},
                "cells": self.cells,
                "exif_gps": None if self.exif is None else {"lat": self.exif[0], "lon": self.exif[1]},
                "error_km": None if self.error_km is None else round(self.error_km, 3)}


class Geolocator:
    """Geolocate photos with a geolocation checkpoint.

    Args:
        checkpoint: an mbv1 geolocation checkpoint or run folder.
        device: ``auto``, ``cpu``, ``cuda``...
        partition: a partition file to use; refused unless it is the one the checkpoint was
            trained with (the checkpoint's own is used when ``None``).
        backend: ``auto`` (on the CPU the fastest exported runtime that passes its parity
            check, :mod:`mbv1.runtimes.cached`), ``eager``, ``onnxruntime`` or ``openvino``.
        warn: gets a line when ``auto`` falls back to eager.
    """

    def __init__(self, checkpoint: str | Path, device: str = "auto",
                 partition: str | Path | None = None, backend: str = "auto", warn=None):
        from mbv1.backbone import fuse_bn
        from mbv1.checkpoint import load_model
        from mbv1.datasets.augment import eval_preprocessing
        from mbv1.devices import resolve_device
        from mbv1.geo.cells import Partition, partition_from_meta
        from mbv1.geo.model import build_model, check_partition
        from mbv1.runtimes.cached import FastForward, file_key, input_shape

        self.device = resolve_device(device)
        loaded = load_model(checkpoint, "geolocation", build_model, self.device)
        self.model, self.meta = loaded.model, loaded.meta
        self.partition = partition_from_meta(self.meta)
        if partition is not None:
            check_partition(Partition.load(partition), self.partition.sha256,
                            len(self.partition), source="this checkpoint")
        self.model.check_partition(self.partition)
        self.transform, self.mean, self.std = eval_preprocessing(loaded.meta, loaded.config)
        self.model = fuse_bn(self.model)
        self.forward = FastForward(self.model, input_shape(self.transform), ["logits"],
                                   loaded.path.stem, file_key(loaded.path), backend,
                                   self.device, warn)
        self.backend = self.forward.backend

    @torch.no_grad()
    def locate(self, paths: list[str | Path], top_k: int = 5, batch_size: int = 32):
        """Yield a :class:`Located` per path, in order."""
        from mbv1.datasets.images import image_batches
        from mbv1.geo.data import exif_gps
        from mbv1.geo.distance import haversine_km
        from mbv1.geo.model import decode

        part = self.partition
        for items, x in image_batches(paths, self.transform, self.mean, self.std, batch_size):
            preds = []
            if x is not None:
                logits = self.forward(x.to(self.device))[0]
                preds = decode(logits.float().cpu(), part, top_k)
            for p, row, error in items:
                if error:
                    yield Located(str(p), error=error)
                    continue
                g = preds[row]
                cells = [{"token": tok, "index": c, "level": int(part.levels[c]),
                          "prob": round(pr, 6), "lat": float(part.centroid_lat[c]),
                          "lon": float(part.centroid_lon[c])}
                         for tok, c, pr in zip(g.tokens, g.cells, g.probs)]
                gps = exif_gps(p)
                exif = gps if isinstance(gps, tuple) else None
                err = float(haversine_km(g.lat, g.lon, *exif)) if exif else None
                yield Located(str(p), g.lat, g.lon, g.place, cells, exif, err)
