"""Geolocation accuracy as in PlaNet and the paper's Table 11.

For each test photo the error is the great-circle distance (haversine, R = 6371 km) from the
predicted location to the true one. Table 11 reports the percentage of photos whose error is
within 1 km (street), 25 km (city), 200 km (region), 750 km (country) and 2500 km (continent);
the median error summarises the whole curve. The per-continent breakdown groups photos by the
continent of their *true* location (nearest GeoNames city's country).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mbv1.geo.distance import haversine_km
from mbv1.paper import TABLE11, TABLE11_COLUMNS, TABLE11_SCALES_KM

THRESHOLDS_KM = (1, 25, 200, 750, 2500)
SCALE_NAMES = {km: name for name, km in TABLE11_SCALES_KM.items()}  # 1 → "street", …


@dataclass
class GeoMetrics:
    """Accuracy over a test set.

    Attributes:
        count: photos evaluated.
        within: ``{threshold km: percent of photos with error <= threshold}``.
        median_km, mean_km: error statistics in km.
        per_continent: ``{continent code: GeoMetrics}`` of the photos truly on that continent
            (empty when not computed).
    """

    count: int
    within: dict[int, float]
    median_km: float
    mean_km: float
    per_continent: dict[str, GeoMetrics] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain values for a checkpoint or ``metrics.csv`` (keys like ``within_25km``)."""
        d = {"count": self.count, "median_km": self.median_km, "mean_km": self.mean_km}
        d.update({f"within_{km}km": v for km, v in self.within.items()})
        if self.per_continent:
            d["per_continent"] = {k: v.to_dict() for k, v in self.per_continent.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> GeoMetrics:
        """Inverse of :meth:`to_dict` (a checkpoint's ``details`` hold this form)."""
        within = {int(k[len("within_"):-len("km")]): float(v) for k, v in d.items()
                  if k.startswith("within_") and k.endswith("km")}
        return cls(int(d["count"]), within, float(d["median_km"]), float(d["mean_km"]),
                   {k: cls.from_dict(v) for k, v in (d.get("per_continent") or {}).items()})


def _summary(err: np.ndarray, thresholds) -> GeoMetrics:
    return GeoMetrics(count=int(err.size),
                      within={int(t): float(100.0 * np.mean(err <= t)) for t in thresholds},
                      median_km=float(np.median(err)), mean_km=float(np.mean(err)))


def geo_metrics(pred_lat, pred_lon, true_lat, true_lon, thresholds_km=THRESHOLDS_KM,
                continents: np.ndarray | None | bool = True) -> GeoMetrics:
    """Share of photos within each distance, median error and a per-continent breakdown.

    Args:
        pred_lat, pred_lon, true_lat, true_lon: ``[N]`` degrees (numpy or torch, N >= 1).
        thresholds_km: distances in km (Table 11's five by default).
        continents: ``[N]`` continent code of each true location; ``True`` looks them up
            with :func:`mbv1.geo.places.continent_of`; ``False``/``None`` skips the breakdown.

    Returns:
        :class:`GeoMetrics` (percentages in [0, 100], distances in km).
    """
    arrays = [np.asarray(a.detach().cpu() if hasattr(a, "detach") else a, dtype=np.float64).ravel()
              for a in (pred_lat, pred_lon, true_lat, true_lon)]
    if len({a.size for a in arrays}) != 1 or arrays[0].size == 0:
        raise ValueError("need four arrays of the same non-zero length")
    err = haversine_km(*arrays)
    out = _summary(err, thresholds_km)
    if continents is True:
        from mbv1.geo.places import continent_of

        continents = continent_of(arrays[2], arrays[3])
    if continents is not None and continents is not False:
        continents = np.asarray(continents, dtype=object)
        for code in sorted(set(continents)):
            out.per_continent[str(code)] = _summary(err[continents == code], thresholds_km)
    return out


def format_table11(metrics: GeoMetrics, name: str = "mbv1",
                   others: dict[str, GeoMetrics] | None = None, split: str | None = None) -> str:
    """Table 11's rows with the paper's three columns and this run's beside them.

    Args:
        metrics: from :func:`geo_metrics` with Table 11's thresholds.
        name: the header of this run's column.
        others: more columns measured on the same photos, e.g. ``{"prior": ...}``.
        split: the photos measured, named in the footer.

    Returns:
        A plain-text table, one line per scale, plus the median error and photo count.
    """
    ours = {name: metrics, **(others or {})}
    cols = list(TABLE11_COLUMNS) + list(ours)
    width = max(len(c) for c in cols) + 2
    lines = [f"{'scale':<20}" + "".join(f"{c:>{width}}" for c in cols)]
    for scale, km in sorted(TABLE11_SCALES_KM.items(), key=lambda kv: -kv[1]):
        cells = [f"{v:.1f}" for v in TABLE11[scale]]
        cells += ["—" if m.within.get(km) is None else f"{m.within[km]:.1f}" for m in ours.values()]
        lines.append(f"{f'{scale} {km} km':<20}" + "".join(f"{c:>{width}}" for c in cells))
    medians = ["—"] * len(TABLE11_COLUMNS) + [f"{m.median_km:,.0f}" for m in ours.values()]
    lines.append(f"{'median error km':<20}" + "".join(f"{c:>{width}}" for c in medians))
    where = f" on {split}" if split else ""
    lines.append(f"% within distance (paper: Im2GPS test set, 237 photos); {name}: "
                 f"{metrics.count:,} photos{where}, median error {metrics.median_km:,.0f} km")
    return "\n".join(lines)


def format_continents(metrics: GeoMetrics, thresholds_km=THRESHOLDS_KM) -> str:
    """The per-continent breakdown as a plain-text table (count, % within, median km)."""
    from mbv1.geo.places import CONTINENTS

    head = f"{'continent':<16}{'photos':>8}" + "".join(f"{f'{t} km':>9}" for t in thresholds_km)
    lines = [head + f"{'median km':>11}"]
    for code, m in sorted(metrics.per_continent.items(), key=lambda kv: -kv[1].count):
        lines.append(f"{CONTINENTS.get(code, code):<16}{m.count:>8}"
                     + "".join(f"{m.within.get(t, float('nan')):>9.1f}" for t in thresholds_km)
                     + f"{m.median_km:>11.0f}")
    return "\n".join(lines)
