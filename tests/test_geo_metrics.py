"""Table 11's metrics: share within distance, median error, per continent, the table."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mbv1.geo.metrics import THRESHOLDS_KM, format_continents, format_table11, geo_metrics

KM_PER_DEG = 2 * np.pi * 6371 / 360  # along a meridian


def test_within_and_median():
    # True points on the equator; predictions displaced north by known distances.
    err_km = np.array([0.5, 10, 100, 500, 1000, 3000, 24.99, 25.01])
    true_lat = np.zeros(8)
    true_lon = np.linspace(-100, 100, 8)
    m = geo_metrics(true_lat + err_km / KM_PER_DEG, true_lon, true_lat, true_lon, continents=False)
    assert m.count == 8 and m.per_continent == {}
    assert m.within == pytest.approx({1: 12.5, 25: 37.5, 200: 62.5, 750: 75.0, 2500: 87.5})
    assert m.median_km == pytest.approx(np.median(err_km), rel=1e-9)
    assert m.mean_km == pytest.approx(err_km.mean(), rel=1e-9)
    d = m.to_dict()
    assert d["within_25km"] == pytest.approx(37.5) and "per_continent" not in d
    # Torch inputs work too.
    mt = geo_metrics(*(torch.as_tensor(a) for a in (true_lat + err_km / KM_PER_DEG, true_lon,
                                                     true_lat, true_lon)), continents=False)
    assert mt.within == pytest.approx(m.within)


def test_per_continent_breakdown():
    true_lat = np.array([48.85, 52.52, -33.9, 35.7])
    true_lon = np.array([2.35, 13.40, 151.2, 139.7])
    pred_lat, pred_lon = true_lat.copy(), true_lon.copy()
    pred_lat[1] += 1.0  # ~111 km off in Berlin
    m = geo_metrics(pred_lat, pred_lon, true_lat, true_lon)
    assert sorted(m.per_continent) == ["AS", "EU", "OC"]
    eu = m.per_continent["EU"]
    assert eu.count == 2 and eu.within[25] == 50.0 and eu.within[200] == 100.0
    assert m.per_continent["OC"].median_km == 0.0
    text = format_continents(m)
    assert "Europe" in text and "Oceania" in text
    explicit = geo_metrics(pred_lat, pred_lon, true_lat, true_lon, continents=["A", "A", "B", "B"])
    assert explicit.per_continent["A"].count == 2


def test_table11_format_shows_paper_and_ours():
    m = geo_metrics([0.0], [0.0], [0.0], [0.1], continents=False)
    text = format_table11(m, name="ours")
    lines = text.splitlines()
    assert "Im2GPS" in lines[0] and "PlaNet MobileNet" in lines[0] and "ours" in lines[0]
    assert "79.3" in lines[1] and "continent 2500 km" in lines[1]  # paper Table 11
    assert lines[5].startswith("street 1 km") and "11.4" in lines[5] and "0.0" in lines[5]
    assert "100.0" in lines[4]  # 11 km off: within 25 km
    assert THRESHOLDS_KM == (1, 25, 200, 750, 2500)


def test_rejects_mismatched_inputs():
    with pytest.raises(ValueError):
        geo_metrics([0.0, 1.0], [0.0], [0.0], [0.0])
    with pytest.raises(ValueError):
        geo_metrics([], [], [], [])
