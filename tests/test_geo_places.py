"""Naming places with the GeoNames cities table."""

from __future__ import annotations

import numpy as np
import pytest

from mbv1.errors import MBV1Error
from mbv1.geo.distance import haversine_km
from mbv1.geo.places import PlaceIndex, continent_of, nearest_place, place_index


def test_nearest_place_named_cities():
    p = nearest_place(48.8566, 2.3522)
    # GeoNames lists Paris's arrondissements as cities too ("Paris 04 Hôtel-de-Ville").
    assert p.name.startswith("Paris")
    assert (p.country_code, p.country, p.continent_code) == ("FR", "France", "EU")
    assert p.distance_km < 2
    p = nearest_place(-33.857, 151.215)
    assert p.country_code == "AU" and p.continent == "Oceania"
    assert nearest_place(37.3196, -121.9465).country_code == "US"
    assert str(nearest_place(48.8566, 2.3522)).startswith("Paris")
    assert "France (Europe)" in str(nearest_place(48.8566, 2.3522))


def test_nearest_is_the_true_nearest():
    index = place_index()
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-60, 70, 30), rng.uniform(-180, 180, 30)
    idx, km = index.nearest_index(lat, lon)
    for a, b, i, d in zip(lat, lon, idx, km):
        all_km = haversine_km(a, b, index.lat, index.lon)
        assert d == pytest.approx(all_km.min(), rel=1e-9, abs=1e-9)
        assert all_km[i] == pytest.approx(all_km.min(), abs=1e-9)


def test_continent_of():
    got = continent_of([48.85, -33.9, 35.7, -23.55, 40.7, 6.5],
                       [2.35, 151.2, 139.7, -46.6, -74.0, 3.4])
    assert got.tolist() == ["EU", "OC", "AS", "SA", "NA", "AF"]


def test_bad_table():
    with pytest.raises(MBV1Error):
        PlaceIndex(min_population=123)
