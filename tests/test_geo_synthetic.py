"""The synthetic geotagged set: real formats, deterministic, location-dependent looks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mbv1.errors import MBV1Error
from mbv1.geo.data import exif_gps, read_csv, scan_folder
from mbv1.geo.synthetic import _city_style, _region_style, make_synthetic_geo, render


def test_writes_real_formats_deterministically(tmp_path):
    a = make_synthetic_geo(tmp_path / "a", num_train=24, num_test=8, size=32, seed=3)
    b = make_synthetic_geo(tmp_path / "b", num_train=24, num_test=8, size=32, seed=3)
    c = make_synthetic_geo(tmp_path / "c", num_train=24, num_test=8, size=32, seed=4)
    files = sorted(p.relative_to(a.root) for p in a.root.rglob("*") if p.is_file())
    assert len(files) == 24 + 8 + 3  # images, train.csv, test.csv, meta.json
    for rel in files:
        assert (a.root / rel).read_bytes() == (b.root / rel).read_bytes(), rel
    assert a.train_csv.read_bytes() != c.train_csv.read_bytes()
    train, test = read_csv(a.train_csv), read_csv(a.test_csv)
    assert (len(train), len(test)) == (24, 8)
    assert np.all(np.abs(train.lat) <= 90) and np.all(np.abs(train.lon) <= 180)
    for p, la, lo in zip(train.paths, train.lat, train.lon):
        assert exif_gps(p) == pytest.approx((la, lo), abs=1e-7)
    scanned, skipped = scan_folder(a.root / "images")
    assert len(scanned) == 32 and not skipped
    meta = json.loads((a.root / "meta.json").read_text())
    assert meta["seed"] == 3 and meta["num_regions"] == a.num_regions >= 2


def test_locations_follow_population(tmp_path):
    s = make_synthetic_geo(tmp_path, num_train=150, num_test=1, size=8, seed=0, write_exif=False)
    rec = read_csv(s.train_csv)
    # Population weighting puts most photos in Asia (lon 60..150 E, lat > -10).
    asia = np.mean((rec.lon > 60) & (rec.lon < 150) & (rec.lat > -10))
    assert 0.3 < asia < 0.8


def test_appearance_depends_on_region():
    rng = np.random.default_rng(0)
    city = _city_style(0, 1)

    def mean_colour(continent, region, n=6):
        return np.mean([np.asarray(render(32, continent, _region_style(0, region), city, rng),
                                   dtype=float).mean((0, 1)) for _ in range(n)], axis=0)

    same = [mean_colour("EU", 7) for _ in range(2)]
    other_cont = mean_colour("AS", 7)
    assert np.abs(same[0] - same[1]).max() < 20
    assert np.abs(same[0] - other_cont).max() > 30
    # Region styles are stable and differ between regions.
    assert _region_style(0, 7)["theta"] == _region_style(0, 7)["theta"]
    assert _region_style(0, 7)["theta"] != _region_style(0, 8)["theta"]


def test_bad_arguments(tmp_path):
    with pytest.raises(MBV1Error):
        make_synthetic_geo(tmp_path, num_train=0)


def test_max_cities_limits_the_places(tmp_path):
    s = make_synthetic_geo(tmp_path, num_train=60, num_test=1, size=8, seed=0, write_exif=False,
                           max_cities=3, jitter_km=0.0)
    rec = read_csv(s.train_csv)
    places = {(round(a, 4), round(b, 4)) for a, b in zip(rec.lat, rec.lon)}
    assert len(places) <= 3  # no jitter: every photo at one of the 3 most populous cities
    assert json.loads((tmp_path / "meta.json").read_text())["max_cities"] == 3
    with pytest.raises(MBV1Error):
        make_synthetic_geo(tmp_path, num_train=2, num_test=1, max_cities=0)
