"""S2 ids and PlaNet's adaptive partition, checked against s2sphere by brute force."""

from __future__ import annotations

import hashlib
import math
from collections import Counter

import numpy as np
import pytest
import s2sphere

from mbv1.errors import MBV1Error
from mbv1.geo import s2
from mbv1.geo.cells import Partition, PartitionConfig, build_partition


def _random_points(n, seed=0):
    """Uniform on the sphere plus the awkward spots: poles, the antimeridian, face edges."""
    rng = np.random.default_rng(seed)
    lat = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    lon = rng.uniform(-180, 180, n)
    special = [(90, 0), (-90, 0), (0, 180), (0, -180), (45, 45), (0, 45), (35.26439, 45),
               (0, 0), (-0.0, 135), (89.999999, -179.999999)]
    lat[:len(special)], lon[:len(special)] = zip(*special)
    return lat, lon


def _clustered_points(n=3000, seed=1):
    """Photos bunched around a few "cities", like real geotags."""
    rng = np.random.default_rng(seed)
    centres = np.array([(48.85, 2.35), (40.7, -74.0), (35.7, 139.7), (-33.9, 151.2),
                        (-23.5, -46.6), (6.5, 3.4), (64.1, -21.9), (-0.2, 179.9)])
    k = rng.integers(len(centres), size=n)
    lat = np.clip(centres[k, 0] + rng.normal(0, 2.0, n), -90, 90)
    lon = (centres[k, 1] + rng.normal(0, 2.0, n) + 180) % 360 - 180
    return lat, lon


def _s2sphere_leaf(lat, lon):
    return s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(float(lat), float(lon)))


def test_leaf_ids_match_s2sphere():
    lat, lon = _random_points(5000)
    ours = s2.leaf_ids(lat, lon)
    ref = np.array([_s2sphere_leaf(a, b).id() for a, b in zip(lat, lon)], dtype=np.uint64)
    assert np.array_equal(ours, ref)
    for level in (0, 1, 7, 15, 29, 30):
        want = [_s2sphere_leaf(a, b).parent(level).id() for a, b in zip(lat[:50], lon[:50])]
        assert s2.parent_ids(ours[:50], level).tolist() == want


def test_known_token():
    leaf = s2.leaf_ids(37.3196, -121.9465)
    assert s2.to_token(int(s2.parent_ids(leaf, 10)[0])) == "808fcb"
    assert s2.from_token("808fcb") == s2sphere.CellId.from_token("808fcb").id()
    assert s2.level_of(s2.from_token("808fcb")) == 10
    part = build_partition([37.3196] * 3, [-121.9465] * 3, t1=1000, t2=1, min_level=10)
    assert part.tokens == ["808fcb"] and part.levels.tolist() == [10]


def _brute_force_check(part, lat, lon, cfg):
    leaves = [_s2sphere_leaf(a, b) for a, b in zip(lat, lon)]
    cells = [s2sphere.CellId.from_token(t) for t in part.tokens]
    # Count by containment over all cells.
    inside = np.full(len(leaves), -1)
    for p, leaf in enumerate(leaves):
        hits = [k for k, c in enumerate(cells) if c.contains(leaf)]
        assert len(hits) <= 1, "cells overlap"
        if hits:
            inside[p] = hits[0]
    assert np.bincount(inside[inside >= 0], minlength=len(cells)).tolist() == part.counts.tolist()
    assert np.array_equal(part.assign(lat, lon), inside)
    # Photos per ancestor at every level, to check the split rule itself.
    per_level = {lv: Counter(leaf.parent(lv).id() for leaf in leaves)
                 for lv in range(cfg.min_level, cfg.max_level + 1)}
    for c, n in zip(cells, part.counts):
        lv = c.level()
        assert n >= cfg.t2
        assert n == per_level[lv][c.id()]
        assert lv == cfg.max_level or n <= cfg.t1, "an unsplit cell holds more than t1"
        assert lv >= cfg.min_level
        for up in range(cfg.min_level, lv):
            assert per_level[up][c.parent(up).id()] > cfg.t1, "split a cell with <= t1 photos"
    # A photo without a class lies in a leaf of the split tree that held fewer than t2.
    for p in np.flatnonzero(inside < 0):
        for lv in range(cfg.min_level, cfg.max_level + 1):
            n = per_level[lv][leaves[p].parent(lv).id()]
            if n <= cfg.t1 or lv == cfg.max_level:
                assert n < cfg.t2
                break


@pytest.mark.parametrize("cfg", [PartitionConfig(t1=100, t2=5),
                                 PartitionConfig(t1=300, t2=40, min_level=2, max_level=6)])
def test_partition_matches_brute_force(cfg):
    lat, lon = _clustered_points()
    part = build_partition(lat, lon, cfg)
    assert len(part) > 10
    _brute_force_check(part, lat, lon, cfg)


def test_partition_on_uniform_points_and_faces():
    lat, lon = _random_points(2000, seed=3)
    part = build_partition(lat, lon, t1=10_000, t2=1)
    assert sorted(part.tokens) == ["1", "3", "5", "7", "9", "b"]  # the six faces
    assert part.counts.sum() == 2000
    cfg = PartitionConfig(t1=60, t2=10)
    part = build_partition(lat, lon, cfg)
    _brute_force_check(part, lat, lon, cfg)


def test_max_level_stops_splitting_duplicates():
    lat = [10.0] * 200 + [10.5] * 3
    lon = [20.0] * 200 + [20.5] * 3
    part = build_partition(lat, lon, t1=50, t2=5, max_level=12)
    assert part.levels.tolist() == [12] and part.counts.tolist() == [200]
    assert part.assign(10.5, 20.5) == -1 and part.assign(10.0, 20.0) == 0


def test_centroids_and_centres():
    lat, lon = _clustered_points(800)
    part = build_partition(lat, lon, t1=100, t2=5)
    k = part.assign(lat, lon)
    for c in range(len(part)):
        # The centroid is the normalised mean of the photos' unit vectors.
        x = y = z = 0.0
        for a, b in zip(np.radians(lat[k == c]), np.radians(lon[k == c])):
            x, y, z = x + math.cos(a) * math.cos(b), y + math.cos(a) * math.sin(b), z + math.sin(a)
        assert part.centroid_lat[c] == pytest.approx(math.degrees(math.atan2(z, math.hypot(x, y))),
                                                     abs=1e-6)
        assert part.centroid_lon[c] == pytest.approx(math.degrees(math.atan2(y, x)), abs=1e-6)
        centre = s2sphere.CellId.from_token(part.tokens[c]).to_lat_lng()
        assert part.center_lat[c] == pytest.approx(centre.lat().degrees, abs=1e-6)
        assert part.center_lon[c] == pytest.approx(centre.lng().degrees, abs=1e-6)
    # The partition's own centres and centroids fall inside their cells.
    assert np.array_equal(part.assign(part.center_lat, part.center_lon), np.arange(len(part)))


def test_save_load_and_hash(tmp_path):
    lat, lon = _clustered_points(1000)
    part = build_partition(lat, lon, t1=80, t2=3)
    csv_path, json_path = part.save(tmp_path / "cells.csv"), part.save(tmp_path / "cells.json")
    assert hashlib.sha256(csv_path.read_bytes()).hexdigest() == part.sha256
    a, b = Partition.load(csv_path), Partition.load(json_path)
    assert a.sha256 == b.sha256 == part.sha256
    assert b.config == part.config and a.config is None
    assert a.tokens == part.tokens and np.array_equal(a.counts, part.counts)
    assert a.save(tmp_path / "again.csv").read_bytes() == csv_path.read_bytes()
    assert csv_path.read_text().splitlines()[0] == \
        "token,level,count,centroid_lat,centroid_lon,center_lat,center_lon"
    # Any change of content changes the hash.
    lines = csv_path.read_text().splitlines()
    lines[1] = lines[1].replace(f",{part.counts[0]},", f",{part.counts[0] + 1},", 1)
    (tmp_path / "edited.csv").write_text("\n".join(lines) + "\n")
    assert Partition.load(tmp_path / "edited.csv").sha256 != part.sha256


def test_load_rejects_bad_files(tmp_path):
    head = "token,level,count,centroid_lat,centroid_lon,center_lat,center_lon\n"
    cases = {
        "noheader.csv": "84,1,5,0,0,0,0\n",
        "level.csv": head + "84,2,5,0,0,0,0\n",  # token 84 is level 1
        "order.csv": head + "8c,1,5,0,0,0,0\n84,1,5,0,0,0,0\n",
        "overlap.csv": head + "84,1,5,0,0,0,0\n85,2,5,0,0,0,0\n",
        "token.csv": head + "zz,1,5,0,0,0,0\n",
        "short.csv": head + "84,1,5,0,0\n",
        "suffix.txt": head,
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(MBV1Error):
            Partition.load(tmp_path / name)
    with pytest.raises(MBV1Error):
        Partition.load(tmp_path / "absent.csv")


def test_invalid_config_and_coordinates():
    with pytest.raises(MBV1Error):
        PartitionConfig(t1=10, t2=20)
    with pytest.raises(MBV1Error):
        PartitionConfig(min_level=5, max_level=4)
    with pytest.raises(MBV1Error, match="no cell"):
        build_partition([1.0, 2.0], [1.0, 2.0], t1=10, t2=5)
    part = build_partition([1.0] * 5, [1.0] * 5, t1=10, t2=1)
    for bad in [(91.0, 0.0), (0.0, 180.5), (float("nan"), 0.0)]:
        with pytest.raises(MBV1Error, match="invalid coordinates"):
            part.assign(*bad)
        with pytest.raises(MBV1Error):
            build_partition([bad[0]], [bad[1]], t1=10, t2=1)


def test_neighbours_are_same_level_edge_neighbours():
    lat, lon = _clustered_points(2000)
    part = build_partition(lat, lon, t1=60, t2=1)
    nb = part.neighbours()
    assert nb.shape == (len(part), 4)
    index = {t: k for k, t in enumerate(part.tokens)}
    for k, token in enumerate(part.tokens):
        want = [index.get(n.to_token(), -1)
                for n in s2sphere.CellId.from_token(token).get_edge_neighbors()]
        assert nb[k].tolist() == want
        for j in nb[k][nb[k] >= 0]:
            assert part.levels[j] == part.levels[k] and k in nb[j]  # symmetric
    assert (nb >= 0).any()


def test_assign_is_fast_enough():
    import time

    lat, lon = _random_points(50_000, seed=5)
    part = build_partition(lat, lon, t1=500, t2=10)
    t = time.perf_counter()
    k = part.assign(lat, lon)
    assert time.perf_counter() - t < 2.0
    assert (k >= 0).sum() == part.counts.sum()
