"""Table 11's model: PlaNet geolocation on a MobileNetV1 body — model, loss, prediction.

PlaNet (Weyand et al. 2016) casts geolocation as classification over an adaptive S2 partition
of the globe (:mod:`mbv1.geo.cells`). The paper's MobileNet PlaNet is the 1.0 MobileNet-224
body with a final layer over the cells: 13 M params = 3 M body + 10 M final layer, 0.58 B
mult-adds. With mbv1's counting (BatchNorm γ/β included, FC bias included) the body has
3,206,976 params and each cell adds 1,025 (1,024 weights + bias), so 13 M params is
9,554 cells (12,999,826 params, 577.5 M mult-adds); the published partition's 26,263 cells
would give 30.1 M. :mod:`mbv1.geo.costs` computes these.

A prediction is the probability over cells; the predicted location is the centroid of the
training photos in the most probable cell (PlaNet's choice), named by the nearest city.

A model knows the sha256 of the partition it was trained with (``partition_sha256``, from the
checkpoint meta) and refuses to decode or evaluate with any other: class ``k`` means a
different place in another partition, and the numbers would be silently wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mbv1.backbone.bodies import build_body
from mbv1.backbone.mobilenet import MobileNetV1
from mbv1.errors import MBV1Error
from mbv1.geo.cells import Partition
from mbv1.geo.metrics import GeoMetrics, geo_metrics
from mbv1.geo.places import Place, place_index
from mbv1.paper import TABLE11_MODELS

PAPER_ROW = TABLE11_MODELS[1]  # PlaNet MobileNet: 13 M params, 580 M mult-adds


class GeoModel(nn.Module):
    """MobileNetV1 body + dropout + a linear classifier over S2 cells.

    Args:
        backbone: a headless :class:`MobileNetV1` (``num_classes=0``).
        num_cells: classes (cells of the partition).
        dropout: before the final layer; 0.001 as TF-slim's MobileNet classifier (keep 0.999),
            so this is the ImageNet model with a different final layer, as in the paper.
        partition_sha256: hex sha256 of the partition the classes are (``Partition.sha256``);
            ``None`` for a model not tied to one yet (it then accepts any partition of
            ``num_cells`` cells).

    ``forward(x [N, 3, H, W])`` returns logits ``[N, num_cells]`` in train and eval mode alike.
    """

    def __init__(self, backbone: MobileNetV1, num_cells: int, dropout: float = 0.001,
                 partition_sha256: str | None = None):
        super().__init__()
        if backbone.num_classes != 0:
            raise ValueError("GeoModel needs a headless backbone: build it with num_classes=0 "
                             "or call backbone.reset_classifier(0)")
        if num_cells < 1:
            raise ValueError(f"num_cells must be >= 1, got {num_cells}")
        self.backbone = backbone
        self.num_cells = num_cells
        # A plain attribute, not a buffer: fine-tuning (model.init) copies every same-shaped
        # tensor of another geolocation checkpoint, which would overwrite a buffer's hash.
        self.partition_sha256 = partition_sha256
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(backbone.num_features, num_cells)
        nn.init.normal_(self.classifier.weight, 0, 0.01)
        nn.init.zeros_(self.classifier.bias)

    def check_partition(self, partition: Partition) -> None:
        """Raise MBV1Error unless ``partition`` is the one this model's classes belong to."""
        check_partition(partition, self.partition_sha256, self.num_cells)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled body features ``[N, num_features]``."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.embed(x)))


def check_partition(partition: Partition, sha256: str | None, num_cells: int | None = None,
                    source: str = "this model") -> None:
    """Refuse a partition other than the one ``source`` was trained with (one-line MBV1Error).

    Args:
        partition: the partition offered.
        sha256: the trained-with partition's hash (``None``: compare the cell count only).
        num_cells: the trained-with cell count, when known.
    """
    if sha256 is not None and partition.sha256 != sha256:
        cells = f", {num_cells} cells" if num_cells is not None else ""
        raise MBV1Error(f"{source} was trained with partition sha256 {sha256[:16]}…{cells}; the "
                        f"partition given is sha256 {partition.sha256[:16]}… ({len(partition)} "
                        "cells): class numbers would name other places. Use the partition saved "
                        "with the checkpoint (drop partition.file / --partition)")
    if num_cells is not None and len(partition) != num_cells:
        raise MBV1Error(f"{source} has {num_cells} cells; the partition given has "
                        f"{len(partition)}: it is not the partition the model was trained with")


def build_geo_model(num_cells: int, alpha: float = 1.0, activation: str = "relu6",
                    dropout: float = 0.001, partition_sha256: str | None = None,
                    **backbone_kw) -> GeoModel:
    """A :class:`GeoModel` on a fresh MobileNetV1 of width ``alpha`` (``backbone_kw``: the
    other :class:`MobileNetV1` arguments: variant, padding, bn_eps)."""
    body = build_body(alpha=alpha, num_classes=0, activation=activation, **backbone_kw)
    return GeoModel(body, num_cells, dropout, partition_sha256)


def build_model(meta: dict, model: dict) -> GeoModel:
    """The GeoModel a geolocation checkpoint holds: one class per cell of the partition stored
    in ``meta`` (verified against its hash), the body settings of ``model`` (a config
    ``model`` section)."""
    from mbv1.backbone import backbone_config
    from mbv1.geo.cells import partition_from_meta

    part = partition_from_meta(meta)
    body = backbone_config(model).to_dict()
    return build_geo_model(len(part), dropout=float(model.get("dropout", 0.001)),
                           partition_sha256=part.sha256, **body)


# --- loss -----------------------------------------------------------------------------------

class GeoLoss(nn.Module):
    """Cross-entropy over cells, optionally smoothing labels onto neighbouring cells.

    With ``smoothing = ε`` the target puts 1 − ε on the true cell and spreads ε evenly over
    its S2 edge neighbours that are cells of the partition at the same level
    (:meth:`Partition.neighbours`); a cell with no such neighbour keeps a hard target. Spatial
    smoothing rewards near misses, unlike uniform label smoothing (which the paper does not
    use for ImageNet either). Targets of -1 (photos outside every cell) are ignored.

    Args:
        neighbours: ``[C, K]`` class indices of each cell's neighbours, -1 padded; needed only
            when ``smoothing > 0``.
        smoothing: ε in [0, 1).

    ``forward(logits [N, C], target [N] int64)`` returns ``{"loss": scalar, "ce": scalar}``
    where ``ce`` is the plain cross-entropy on the true cells (for logging).
    """

    def __init__(self, neighbours=None, smoothing: float = 0.0):
        super().__init__()
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        if smoothing > 0 and neighbours is None:
            raise ValueError("smoothing onto neighbours needs the neighbour table")
        self.smoothing = smoothing
        nb = torch.as_tensor(np.asarray(neighbours if neighbours is not None else
                                        np.zeros((0, 1))), dtype=torch.long)
        self.register_buffer("neighbours", nb, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        valid = target >= 0
        if not valid.any():
            zero = logits.sum() * 0.0
            return {"loss": zero, "ce": zero.detach()}
        logits, target = logits[valid], target[valid]
        logp = F.log_softmax(logits.float(), dim=1)
        nll = -logp.gather(1, target[:, None])[:, 0]
        ce = nll.mean()
        if self.smoothing == 0:
            return {"loss": ce, "ce": ce.detach()}
        nbr = self.neighbours[target]  # [N, K]
        has = nbr >= 0
        n = has.sum(1)
        nbr_nll = -(logp.gather(1, nbr.clamp(min=0)) * has).sum(1) / n.clamp(min=1)
        eps = torch.where(n > 0, self.smoothing, 0.0)
        loss = ((1 - eps) * nll + eps * nbr_nll).mean()
        return {"loss": loss, "ce": ce.detach()}


def build_geo_loss(partition: Partition, smoothing: float = 0.0) -> GeoLoss:
    """The loss for a partition (neighbour table computed only when smoothing)."""
    return GeoLoss(partition.neighbours() if smoothing > 0 else None, smoothing)


# --- prediction -----------------------------------------------------------------------------

@dataclass
class GeoPrediction:
    """One image's answer.

    Attributes:
        cells: top-k class indices, most probable first.
        tokens: their S2 tokens.
        probs: their probabilities in [0, 1].
        lat, lon: predicted location, degrees (the best cell's photo centroid).
        place: nearest named city to (lat, lon), if requested.
    """

    cells: list[int]
    tokens: list[str]
    probs: list[float]
    lat: float
    lon: float
    place: Place | None = None


def logits_to_latlon(logits: torch.Tensor, partition: Partition) -> tuple[np.ndarray, np.ndarray]:
    """Predicted locations ``([N], [N])`` degrees: centroids of the arg-max cells."""
    if logits.shape[-1] != len(partition):
        raise ValueError(f"logits have {logits.shape[-1]} classes, partition {len(partition)}")
    best = logits.argmax(dim=1).cpu().numpy()
    return partition.centroid_lat[best], partition.centroid_lon[best]


def decode(logits: torch.Tensor, partition: Partition, k: int = 5,
           name_places: bool = True) -> list[GeoPrediction]:
    """Turn logits ``[N, C]`` into :class:`GeoPrediction` s (top-``k`` cells)."""
    lat, lon = logits_to_latlon(logits, partition)
    probs, idx = logits.float().softmax(dim=1).topk(min(k, logits.shape[1]), dim=1)
    places = place_index().nearest_many(lat, lon) if name_places else [None] * len(lat)
    tokens = partition.tokens
    return [GeoPrediction([int(c) for c in ci], [tokens[c] for c in ci], [float(p) for p in pi],
                          float(la), float(lo), pl)
            for ci, pi, la, lo, pl in zip(idx.tolist(), probs.tolist(), lat, lon, places)]


@torch.no_grad()
def predict(model: GeoModel, images: torch.Tensor, partition: Partition, k: int = 5,
            name_places: bool = True) -> list[GeoPrediction]:
    """Geolocate a batch ``[N, 3, H, W]`` (already transformed) with ``model`` in eval mode.

    Raises:
        MBV1Error: ``partition`` is not the one ``model`` was trained with.
    """
    model.check_partition(partition)
    was = model.training
    model.eval()
    try:
        p = next(model.parameters())
        logits = model(images.to(device=p.device, dtype=p.dtype))
    finally:
        model.train(was)
    return decode(logits, partition, k, name_places)


@dataclass
class GeoOutputs:
    """A model's answers over a test set (numpy, one row per photo).

    Attributes:
        pred_lat, pred_lon: ``[N]`` predicted location (best cell's centroid), degrees.
        true_lat, true_lon: ``[N]`` true location, degrees.
        cells: ``[N]`` true class, -1 for photos outside every cell.
        top: ``[N, k]`` the k most probable classes.
        prob: ``[N]`` probability of the best class.
        index: ``[N]`` dataset index of each photo (batches may skip unreadable images).
    """

    pred_lat: np.ndarray
    pred_lon: np.ndarray
    true_lat: np.ndarray
    true_lon: np.ndarray
    cells: np.ndarray
    top: np.ndarray
    prob: np.ndarray
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.true_lat)

    def cell_accuracy(self) -> dict[str, float]:
        """``{"cell_top1": %, "cell_top5": %}`` over photos that lie in a cell (0 if none)."""
        inside = self.cells >= 0
        n = max(int(inside.sum()), 1)
        top = self.top[inside]
        truth = self.cells[inside]
        return {"cell_top1": 100.0 * float((top[:, 0] == truth).sum()) / n,
                "cell_top5": 100.0 * float((top[:, :5] == truth[:, None]).any(1).sum()) / n}


def _unpack(batch: dict, offset: int):
    """``(images, cells, lat, lon, index)`` of a :class:`mbv1.geo.sources.GeoImageDataset`
    batch."""
    n = len(batch["image"])
    index = batch.get("index")
    index = np.arange(offset, offset + n) if index is None else np.asarray(index)
    return batch["image"], batch["cell"], batch["lat"], batch["lon"], index


@torch.no_grad()
def collect(model: GeoModel, loader, partition: Partition, k: int = 5, prepare=None) -> GeoOutputs:
    """Run ``model`` (put in eval mode, restored after) over every batch of ``loader``.

    Args:
        loader: batches of :class:`mbv1.geo.sources.GeoImageDataset` (dicts with ``image``,
            ``cell``, ``lat``, ``lon``, ``index``); ``None`` batches (every image unreadable)
            are skipped.
        partition: the partition the model was trained with (checked).
        k: how many top classes to keep.
        prepare: ``images -> images`` on the model's device (default: ``.to(device, dtype)``).

    Raises:
        MBV1Error: another partition, or no photo at all.
    """
    model.check_partition(partition)
    was = model.training
    model.eval()
    p = next(model.parameters())
    prepare = prepare or (lambda x: x.to(device=p.device, dtype=p.dtype))
    parts: dict[str, list] = {k_: [] for k_ in GeoOutputs.__dataclass_fields__}
    seen = 0
    try:
        for batch in loader:
            if batch is None:
                continue
            images, cells, lat, lon, index = _unpack(batch, seen)
            seen += len(images)
            logits = model(prepare(images)).float().cpu()
            la, lo = logits_to_latlon(logits, partition)
            probs = logits.softmax(1)
            best, top = probs.topk(min(k, logits.shape[1]), dim=1)
            for name, value in (("pred_lat", la), ("pred_lon", lo), ("true_lat", lat),
                                ("true_lon", lon), ("cells", cells), ("top", top),
                                ("prob", best[:, 0]), ("index", index)):
                parts[name].append(np.asarray(value.cpu() if hasattr(value, "cpu") else value))
    finally:
        model.train(was)
    if not seen:
        raise MBV1Error("the evaluation saw no readable photo")
    out = {name: np.concatenate(v) for name, v in parts.items()}
    for name in ("pred_lat", "pred_lon", "true_lat", "true_lon", "prob"):
        out[name] = out[name].astype(np.float64)
    for name in ("cells", "top", "index"):
        out[name] = out[name].astype(np.int64)
    return GeoOutputs(**out)


def evaluate(model: GeoModel, loader, partition: Partition, continents: bool = True
             ) -> tuple[GeoMetrics, dict]:
    """Run ``model`` over a test loader and measure it (see :func:`collect`).

    Args:
        model: the trained model (put in eval mode here, restored after).
        loader: :class:`mbv1.geo.sources.GeoImageDataset` batches.
        partition: the partition the model was trained with.
        continents: add the per-continent breakdown.

    Returns:
        (:class:`GeoMetrics` of distances, ``{"cell_top1": %, "cell_top5": %}`` over photos that
        lie in a cell).
    """
    out = collect(model, loader, partition)
    metrics = geo_metrics(out.pred_lat, out.pred_lon, out.true_lat, out.true_lon,
                          continents=continents)
    return metrics, out.cell_accuracy()


def prior_metrics(partition: Partition, true_lat, true_lon, continents=None) -> GeoMetrics:
    """The prior baseline: every photo placed at the centroid of the most populous cell (the
    cell with the most training photos, the lowest class index on a tie)."""
    best = int(np.argmax(partition.counts))
    n = len(np.atleast_1d(true_lat))
    return geo_metrics(np.full(n, partition.centroid_lat[best]),
                       np.full(n, partition.centroid_lon[best]), true_lat, true_lon,
                       continents=continents)


# --- costs ----------------------------------------------------------------------------------
