"""Geotagged photos: ``path,lat,lon`` CSVs, EXIF GPS folders, robust image loading, a Dataset.

Formats:

- CSV with a header naming at least ``path``, ``lat`` and ``lon`` (other columns are ignored);
  relative paths are relative to the CSV's folder; coordinates are WGS-84 degrees (north and
  east positive). A bad coordinate stops the read with the file and line number.
- A folder of photos whose EXIF carries GPS (the GPS IFD's degree/minute/second rationals with
  N/S and E/W references). Photos without a usable position are returned as skipped, with the
  reason, never guessed.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational

from mbv1.errors import MBV1Error

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp")
_GPS = ExifTags.IFD.GPSInfo
# GPS IFD tags (EXIF 2.3, section 4.6.6)
_LAT_REF, _LAT, _LON_REF, _LON, _STATUS = 1, 2, 3, 4, 9


@dataclass
class GeoRecords:
    """Photos and their true locations.

    Attributes:
        paths: ``[N]`` absolute paths.
        lat, lon: ``[N]`` float64 degrees.
    """

    paths: list[Path]
    lat: np.ndarray
    lon: np.ndarray

    def __post_init__(self):
        self.lat = np.asarray(self.lat, dtype=np.float64).ravel()
        self.lon = np.asarray(self.lon, dtype=np.float64).ravel()
        if not len(self.paths) == len(self.lat) == len(self.lon):
            raise ValueError("paths, lat and lon must have the same length")

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, index) -> GeoRecords:
        """Records at an integer index array or boolean mask ``[N]``."""
        idx = np.arange(len(self))[index]
        return GeoRecords([self.paths[i] for i in idx], self.lat[idx], self.lon[idx])


def _check_latlon(lat: float, lon: float) -> str | None:
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return f"coordinates must be numbers, got lat={lat}, lon={lon}"
    if abs(lat) > 90:
        return f"latitude {lat} is outside [-90, 90]"
    if abs(lon) > 180:
        return f"longitude {lon} is outside [-180, 180]"
    return None


def read_csv(path: str | Path, check_files: bool = True) -> GeoRecords:
    """Read a ``path,lat,lon`` CSV (header required).

    Args:
        path: the CSV file.
        check_files: raise if a listed image does not exist.

    Raises:
        MBV1Error: missing header columns, a non-numeric or out-of-range coordinate (naming the
            line), an empty file, or missing images.
    """
    path = Path(path)
    if not path.is_file():
        raise MBV1Error(f"CSV not found: {path}")
    root = path.parent.resolve()
    paths, lats, lons = [], [], []
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [c for c in ("path", "lat", "lon") if c not in header]
        if missing:
            raise MBV1Error(f"{path}: the first line must be a header with columns path,lat,lon "
                            f"(missing {','.join(missing)}; found {','.join(header) or 'nothing'})")
        ip, ia, io = (header.index(c) for c in ("path", "lat", "lon"))
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            where = f"{path}: line {reader.line_num}"
            try:
                p, la, lo = row[ip].strip(), float(row[ia]), float(row[io])
            except (IndexError, ValueError):
                raise MBV1Error(f"{where}: expected path,lat,lon with numeric lat/lon, got "
                                f"{','.join(row)!r}") from None
            problem = _check_latlon(la, lo) or (None if p else "empty path")
            if problem:
                raise MBV1Error(f"{where}: {problem}; fix or remove the row")
            paths.append(root / p)
            lats.append(la)
            lons.append(lo)
    if not paths:
        raise MBV1Error(f"{path} lists no photos")
    if check_files:
        absent = [p for p in paths if not p.is_file()]
        if absent:
            raise MBV1Error(f"{path}: {len(absent)} listed image(s) not found, first: {absent[0]}")
    return GeoRecords(paths, np.array(lats), np.array(lons))


def write_csv(path: str | Path, records: GeoRecords) -> Path:
    """Write records as a ``path,lat,lon`` CSV (paths relative to the CSV's folder if inside)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = path.parent.resolve()
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["path", "lat", "lon"])
        for p, la, lo in zip(records.paths, records.lat, records.lon):
            p = Path(p).resolve()
            rel = os.path.relpath(p, root) if p.is_relative_to(root) else str(p)
            w.writerow([Path(rel).as_posix(), f"{la:.6f}", f"{lo:.6f}"])
    return path


# --- EXIF GPS -------------------------------------------------------------------------------

def _ref(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value).strip("\x00 ").upper()


def _dms(value) -> Fraction:
    """Degrees from a GPS (degrees, minutes, seconds) tuple of rationals, exactly."""
    parts = list(value) if isinstance(value, (tuple, list)) else [value]
    if not 1 <= len(parts) <= 3:
        raise ValueError(f"expected 1 to 3 rationals, got {len(parts)}")
    total = Fraction(0)
    for part, scale in zip(parts, (1, 60, 3600)):
        if isinstance(part, IFDRational):
            if part.denominator == 0:
                raise ValueError("a rational with zero denominator")
            frac = Fraction(part.numerator, part.denominator)
        elif isinstance(part, tuple):  # old Pillow: (num, den)
            if part[1] == 0:
                raise ValueError("a rational with zero denominator")
            frac = Fraction(part[0], part[1])
        else:
            frac = Fraction(part)
        if frac < 0:
            raise ValueError("a negative degree/minute/second")
        total += frac / scale
    return total


def exif_gps(path: str | Path) -> tuple[float, float] | str:
    """The GPS position in a photo's EXIF, or why there is none.

    Args:
        path: an image file.

    Returns:
        ``(lat, lon)`` in degrees (S and W negative, computed exactly from the rationals), or a
        short reason string when the photo has no usable position.
    """
    try:
        with Image.open(path) as img:
            gps = img.getexif().get_ifd(_GPS)
    except (OSError, SyntaxError, ValueError) as e:
        return f"cannot read the file: {e}"
    if not gps:
        return "no GPS in EXIF"
    if _LAT not in gps or _LON not in gps:
        return "GPS without latitude/longitude"
    if _ref(gps.get(_STATUS, "A")) == "V":
        return "GPS status is void (no fix)"
    lat_ref, lon_ref = _ref(gps.get(_LAT_REF, "")), _ref(gps.get(_LON_REF, ""))
    if lat_ref not in ("N", "S") or lon_ref not in ("E", "W"):
        return f"GPS without N/S or E/W reference (got {lat_ref!r}, {lon_ref!r})"
    try:
        lat, lon = _dms(gps[_LAT]), _dms(gps[_LON])
    except (ValueError, TypeError, ZeroDivisionError) as e:
        return f"invalid GPS value: {e}"
    lat = float(-lat if lat_ref == "S" else lat)
    lon = float(-lon if lon_ref == "W" else lon)
    if lat == 0.0 and lon == 0.0:
        return "GPS is exactly 0,0 (a missing fix)"
    return _check_latlon(lat, lon) or (lat, lon)


def gps_exif(lat: float, lon: float, exif: Image.Exif | None = None) -> Image.Exif:
    """An EXIF block carrying a GPS position (to pass as ``img.save(..., exif=...)``).

    Seconds are written as rationals over 10,000 (≈3 mm), as phones do.
    """
    if _check_latlon(lat, lon):
        raise MBV1Error(_check_latlon(lat, lon))
    exif = exif if exif is not None else Image.Exif()

    def dms(x: float) -> tuple[IFDRational, IFDRational, IFDRational]:
        tenth_ms = round(abs(x) * 3600 * 10_000)  # in 1e-4 arcseconds
        d, rem = divmod(tenth_ms, 3600 * 10_000)
        m, s = divmod(rem, 60 * 10_000)
        return IFDRational(d, 1), IFDRational(m, 1), IFDRational(s, 10_000)

    exif[_GPS] = {0: b"\x02\x02\x00\x00", _LAT_REF: "N" if lat >= 0 else "S", _LAT: dms(lat),
                  _LON_REF: "E" if lon >= 0 else "W", _LON: dms(lon)}
    return exif


def scan_folder(folder: str | Path, recursive: bool = True,
                extensions: tuple[str, ...] = IMAGE_EXTENSIONS
                ) -> tuple[GeoRecords, list[tuple[Path, str]]]:
    """Collect photos with EXIF GPS from a folder.

    Args:
        folder: the folder to scan (sorted, so the result is reproducible).
        recursive: include sub-folders.
        extensions: file suffixes taken as images (case-insensitive).

    Returns:
        (records of the photos with a position, ``[(path, reason)]`` of those skipped).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MBV1Error(f"not a folder: {folder}")
    files = sorted(p for p in (folder.rglob("*") if recursive else folder.iterdir())
                   if p.is_file() and p.suffix.lower() in extensions)
    paths, lats, lons, skipped = [], [], [], []
    for p in files:
        got = exif_gps(p)
        if isinstance(got, str):
            skipped.append((p.resolve(), got))
        else:
            paths.append(p.resolve())
            lats.append(got[0])
            lons.append(got[1])
    return GeoRecords(paths, np.array(lats), np.array(lons)), skipped


# --- images ---------------------------------------------------------------------------------

def load_image(path: str | Path) -> Image.Image:
    """Open an image as 8-bit RGB, upright: :func:`mbv1.datasets.images.load_rgb` (EXIF
    orientation applied; grayscale, 16-bit, float, palette, CMYK and transparent images
    converted; one-line MBV1Error naming the path for a missing or broken file)."""
    from mbv1.datasets.images import load_rgb

    return load_rgb(path)
