"""Haversine against geopy's great-circle distance; spherical means."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mbv1.geo.distance import EARTH_RADIUS_KM, haversine_km, spherical_mean

great_circle = pytest.importorskip("geopy.distance").great_circle


def _pairs(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    lat1, lat2 = np.degrees(np.arcsin(rng.uniform(-1, 1, (2, n))))
    lon1, lon2 = rng.uniform(-180, 180, (2, n))
    # Near pairs (metres to km apart) and near-antipodal pairs too.
    lat2[:200] = lat1[:200] + rng.normal(0, 0.01, 200)
    lon2[:200] = lon1[:200] + rng.normal(0, 0.01, 200)
    lat2[200:300], lon2[200:300] = -lat1[200:300] + 1e-3, lon1[200:300] - 180 + 1e-3
    return np.clip(lat1, -90, 90), lon1, np.clip(lat2, -90, 90), (lon2 + 180) % 360 - 180


def test_haversine_matches_geopy():
    lat1, lon1, lat2, lon2 = _pairs()
    ours = haversine_km(lat1, lon1, lat2, lon2)
    ref = np.array([great_circle((a, b), (c, d), radius=EARTH_RADIUS_KM).km
                    for a, b, c, d in zip(lat1, lon1, lat2, lon2)])
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-9)
    assert EARTH_RADIUS_KM == 6371.0


def test_torch_and_numpy_agree_and_broadcast():
    lat1, lon1, lat2, lon2 = _pairs(500, seed=1)
    ref = haversine_km(lat1, lon1, lat2, lon2)
    t64 = haversine_km(*(torch.from_numpy(a) for a in (lat1, lon1, lat2, lon2)))
    assert t64.dtype == torch.float64
    # Near the antipode asin(sqrt(a)) amplifies one ulp of a (numpy 2.4 vs torch: 1.2e-7 km at
    # 20,015 km), hence 1 mm absolute beside the 1e-12 relative tolerance.
    np.testing.assert_allclose(t64.numpy(), ref, rtol=1e-12, atol=1e-6)
    t32 = haversine_km(torch.tensor(lat1, dtype=torch.float32), lon1, lat2, lon2)
    assert t32.dtype == torch.float32
    np.testing.assert_allclose(t32.numpy(), ref, rtol=1e-3, atol=0.5)
    # Broadcasting: one point against many.
    one = haversine_km(lat1[:1], lon1[:1], lat2, lon2)
    assert one.shape == (500,)
    assert isinstance(haversine_km(0, 0, 0, 1), float)
    assert haversine_km(0, 0, 0, 1) == pytest.approx(2 * np.pi * 6371 / 360)
    assert haversine_km(90, 0, -90, 0) == pytest.approx(np.pi * 6371)
    assert haversine_km(10, 179.9, 10, -179.9) == pytest.approx(21.9, abs=0.1)


def test_spherical_mean():
    lat, lon = spherical_mean([10, 10], [179, -179])
    assert lat == pytest.approx(10.0, abs=0.01) and abs(lon) == pytest.approx(180.0)
    lat, lon = spherical_mean([45, 45, -45], [0, 90, 45], groups=[0, 0, 2], num_groups=3)
    assert lat[0] == pytest.approx(np.degrees(np.arctan2(np.sqrt(2), 1)), abs=1e-9)
    assert lon[0] == pytest.approx(45.0)
    assert np.isnan(lat[1]) and np.isnan(lon[1])
    assert (lat[2], lon[2]) == pytest.approx((-45.0, 45.0))
