"""Geolocation data and geometry for the paper's Table 11 (PlaNet on MobileNet).

- :mod:`~mbv1.geo.s2`: vectorised S2 cell ids.
- :mod:`~mbv1.geo.cells`: PlaNet's adaptive S2 partition (the classes).
- :mod:`~mbv1.geo.distance`: haversine distance (R = 6371 km), spherical means.
- :mod:`~mbv1.geo.places`: nearest GeoNames city, country and continent.
- :mod:`~mbv1.geo.data`: ``path,lat,lon`` CSVs, EXIF GPS, robust image loading.
- :mod:`~mbv1.geo.metrics`: % within 1/25/200/750/2500 km, median error, per continent.
- :mod:`~mbv1.geo.synthetic`: a small synthetic geotagged set in the same formats.
- :mod:`~mbv1.geo.model`: PlaNet on MobileNetV1 (model, neighbour-smoothed loss, decoding,
  evaluation, the prior baseline); :mod:`~mbv1.geo.costs`: Table 11's costs;
  :mod:`~mbv1.geo.sources`: what ``--data`` may be and the one Dataset; :mod:`~mbv1.geo.predictor`: ``mbv1 geolocate``. These import torch and
  are not imported here; the task is :mod:`mbv1.tasks.geolocation`.
"""

from mbv1.geo.cells import Partition, PartitionConfig, build_partition
from mbv1.geo.data import (
                           GeoRecords,
                           exif_gps,
                           gps_exif,
                           load_image,
                           read_csv,
                           scan_folder,
                           write_csv,
)
from mbv1.geo.distance import EARTH_RADIUS_KM, haversine_km, spherical_mean
from mbv1.geo.metrics import GeoMetrics, format_continents, format_table11, geo_metrics
from mbv1.geo.places import Place, PlaceIndex, continent_of, nearest_place
from mbv1.geo.synthetic import SyntheticGeoSet, make_synthetic_geo

__all__ = [
    "EARTH_RADIUS_KM", "GeoMetrics", "GeoRecords", "Partition", "PartitionConfig",
    "Place", "PlaceIndex", "SyntheticGeoSet", "build_partition", "continent_of", "exif_gps",
    "format_continents", "format_table11", "geo_metrics", "gps_exif", "haversine_km",
    "load_image", "make_synthetic_geo", "nearest_place", "read_csv", "scan_folder",
    "spherical_mean", "write_csv",
]
