"""Geotagged data: CSV, EXIF GPS, robust image loading, the Dataset."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational

from mbv1.errors import MBV1Error
from mbv1.geo.cells import build_partition
from mbv1.geo.data import (
    GeoRecords,
    exif_gps,
    gps_exif,
    load_image,
    read_csv,
    scan_folder,
    write_csv,
)
from mbv1.geo.sources import partition_dataset

GPS = ExifTags.IFD.GPSInfo


def _jpeg(path, gps=None, size=(16, 12), colour=(200, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, colour)
    if gps is None:
        img.save(path)
    else:
        exif = Image.Exif()
        exif[GPS] = gps
        img.save(path, exif=exif)
    return path


def test_exif_gps_roundtrip_exact_dms_south_west(tmp_path):
    # Sydney Opera House written as a phone would: integer degrees and minutes, seconds/10000.
    lat_dms = (IFDRational(33, 1), IFDRational(51, 1), IFDRational(244_812, 10_000))
    lon_dms = (IFDRational(151, 1), IFDRational(12, 1), IFDRational(512_345, 10_000))
    path = _jpeg(tmp_path / "sydney.jpg",
                 {0: b"\x02\x02\x00\x00", 1: "S", 2: lat_dms, 3: "W", 4: lon_dms})
    raw = Image.open(path).getexif().get_ifd(GPS)
    assert raw[1] == "S" and raw[3] == "W"
    assert [Fraction(v.numerator, v.denominator) for v in raw[2]] == \
        [Fraction(33), Fraction(51), Fraction(244_812, 10_000)]
    lat, lon = exif_gps(path)
    assert lat == -float(Fraction(33) + Fraction(51, 60) + Fraction(244_812, 10_000 * 3600))
    assert lon == -float(Fraction(151) + Fraction(12, 60) + Fraction(512_345, 10_000 * 3600))
    assert lat == pytest.approx(-33.856800333, abs=1e-9)


def test_gps_exif_writer_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    for k, (la, lo) in enumerate(zip(rng.uniform(-90, 90, 20), rng.uniform(-180, 180, 20))):
        path = tmp_path / f"{k}.jpg"
        Image.new("RGB", (8, 8)).save(path, exif=gps_exif(la, lo))
        got = exif_gps(path)
        assert got == pytest.approx((la, lo), abs=1e-7)  # 1e-4 arcsec steps


@pytest.mark.parametrize("gps, reason", [
    (None, "no GPS"),
    ({1: "N", 3: "E"}, "without latitude"),
    ({2: (IFDRational(1), IFDRational(2), IFDRational(3)), 4: (IFDRational(1),) * 3},
     "reference"),
    ({1: "N", 2: (IFDRational(1), IFDRational(2), IFDRational(3)), 3: "E",
      4: (IFDRational(1),) * 3, 9: "V"}, "void"),
    ({1: "N", 2: (IFDRational(0),) * 3, 3: "E", 4: (IFDRational(0),) * 3}, "0,0"),
    ({1: "N", 2: (IFDRational(95), IFDRational(0), IFDRational(0)), 3: "E",
      4: (IFDRational(1),) * 3}, "outside"),
])
def test_photos_without_usable_gps_are_reported(tmp_path, gps, reason):
    got = exif_gps(_jpeg(tmp_path / "x.jpg", gps))
    assert isinstance(got, str) and reason in got


def test_scan_folder_reports_skipped(tmp_path):
    leuven = {1: "N", 2: (IFDRational(50), IFDRational(52), IFDRational(175, 10)),
              3: "E", 4: (IFDRational(4), IFDRational(41), IFDRational(4914, 100))}
    _jpeg(tmp_path / "a" / "1.jpg", leuven)
    _jpeg(tmp_path / "a" / "b" / "2.JPG")
    (tmp_path / "a" / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "a" / "notes.txt").write_text("ignored")
    records, skipped = scan_folder(tmp_path / "a")
    assert len(records) == 1 and records.paths[0].name == "1.jpg"
    assert records.lat[0] == pytest.approx(50.871527778)
    assert records.lon[0] == pytest.approx(4.69698333)
    assert sorted((p.name, r.split(":")[0]) for p, r in skipped) == \
        [("2.JPG", "no GPS in EXIF"), ("broken.jpg", "cannot read the file")]
    flat, _ = scan_folder(tmp_path / "a", recursive=False)
    assert len(flat) == 1
    with pytest.raises(MBV1Error):
        scan_folder(tmp_path / "absent")


def test_csv_roundtrip_relative_paths(tmp_path):
    paths = [_jpeg(tmp_path / "img" / f"{k}.jpg") for k in range(3)]
    rec = GeoRecords(paths, [1.5, -2.25, 89.999999], [-179.5, 0.0, 180.0])
    csv_path = write_csv(tmp_path / "train.csv", rec)
    lines = csv_path.read_text().splitlines()
    assert lines[:2] == ["path,lat,lon", "img/0.jpg,1.500000,-179.500000"]
    back = read_csv(csv_path)
    assert [p.resolve() for p in back.paths] == [p.resolve() for p in paths]
    np.testing.assert_array_equal(back.lat, rec.lat)
    np.testing.assert_array_equal(back.lon, rec.lon)
    # Extra columns and a different column order are fine.
    (tmp_path / "other.csv").write_text("lon,id,lat,path\n10,7,20,img/1.jpg\n")
    other = read_csv(tmp_path / "other.csv")
    assert (other.lat[0], other.lon[0]) == (20.0, 10.0)


@pytest.mark.parametrize("body, match", [
    ("path,lat,lon\nimg/0.jpg,10,20\nimg/1.jpg,90.5,20\n", "line 3: latitude 90.5"),
    ("path,lat,lon\nimg/0.jpg,10,-180.01\n", "line 2: longitude -180.01"),
    ("path,lat,lon\nimg/0.jpg,nan,20\n", "line 2: coordinates must be numbers"),
    ("path,lat,lon\n\nimg/0.jpg,north,20\n", "line 3: expected path,lat,lon"),
    ("path,lat,lon\nimg/0.jpg,10\n", "line 2"),
    ("img/0.jpg,10,20\n", "header"),
    ("path,latitude,lon\nimg/0.jpg,10,20\n", "missing lat"),
    ("path,lat,lon\n", "lists no photos"),
    ("path,lat,lon\nimg/absent.jpg,1,2\n", "not found"),
])
def test_csv_errors_name_the_line(tmp_path, body, match):
    _jpeg(tmp_path / "img" / "0.jpg")
    (tmp_path / "bad.csv").write_text(body)
    with pytest.raises(MBV1Error, match=match) as e:
        read_csv(tmp_path / "bad.csv")
    assert "\n" not in str(e.value)


def _modes(tmp_path):
    """Images in awkward modes, with the RGB pixel each should load as."""
    out = {}
    g = Image.new("L", (4, 4), 100)
    out["gray.png"] = (g, (100, 100, 100))
    out["gray16.png"] = (Image.fromarray(np.full((4, 4), 65535, np.uint16)), (255, 255, 255))
    out["gray16_mid.png"] = (Image.fromarray(np.full((4, 4), 257 * 60, np.uint16)), (60, 60, 60))
    out["rgba.png"] = (Image.new("RGBA", (4, 4), (10, 20, 30, 0)), (255, 255, 255))
    out["rgba_opaque.png"] = (Image.new("RGBA", (4, 4), (10, 20, 30, 255)), (10, 20, 30))
    out["la.png"] = (Image.new("LA", (4, 4), (50, 255)), (50, 50, 50))
    p = Image.new("P", (4, 4), 1)
    p.putpalette([0, 0, 0, 40, 80, 120] + [0] * 762)
    out["palette.png"] = (p, (40, 80, 120))
    pt = p.copy()
    pt.info["transparency"] = 1
    out["palette_transparent.png"] = (pt, (255, 255, 255))
    out["bilevel.png"] = (Image.new("1", (4, 4), 1), (255, 255, 255))
    out["float.tif"] = (Image.fromarray(np.full((4, 4), 0.5, np.float32)), (128, 128, 128))
    out["cmyk.jpg"] = (Image.new("CMYK", (4, 4), (0, 0, 0, 0)), (255, 255, 255))
    for name, (img, _) in out.items():
        img.save(tmp_path / name)
    return out


def test_load_image_converts_every_mode(tmp_path):
    for name, (_, rgb) in _modes(tmp_path).items():
        img = load_image(tmp_path / name)
        assert img.mode == "RGB" and img.size == (4, 4), name
        got = np.asarray(img)[1, 1]
        assert np.abs(got.astype(int) - rgb).max() <= 2, (name, got, rgb)


def test_load_image_applies_exif_orientation(tmp_path):
    img = Image.new("RGB", (6, 2), (0, 0, 0))
    img.putpixel((0, 0), (255, 0, 0))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # stored sideways: rotate 90° clockwise to view
    img.save(tmp_path / "rot.png", exif=exif)
    out = load_image(tmp_path / "rot.png")
    assert out.size == (2, 6)
    assert tuple(out.getpixel((1, 0))) == (255, 0, 0)


@pytest.mark.parametrize("content", [b"", b"garbage bytes, not an image", None])
def test_corrupt_or_missing_image_names_the_path(tmp_path, content):
    path = tmp_path / "bad.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(MBV1Error, match="bad.jpg") as e:
        load_image(path)
    assert "\n" not in str(e.value)


def test_truncated_jpeg_raises(tmp_path):
    from PIL import ImageFile

    if ImageFile.LOAD_TRUNCATED_IMAGES:
        pytest.skip("another module made Pillow accept truncated images")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(MBV1Error, match="cut.jpg"):
        load_image(tmp_path / "cut.jpg")


def test_dataset_items(tmp_path):
    paths = [_jpeg(tmp_path / f"{k}.jpg", colour=(k * 40, 0, 0)) for k in range(5)]
    lat = [48.85, 48.86, 48.87, 35.68, -33.9]
    lon = [2.35, 2.36, 2.37, 139.7, 151.2]
    rec = GeoRecords(paths, lat, lon)
    part = build_partition(lat[:4], lon[:4], t1=2, t2=1, min_level=5, max_level=8)
    def as_is(a, seed):  # no resize: the 16x12 photo as it is
        return a

    ds = partition_dataset(rec, part, as_is, mean=(0, 0, 0), std=(1, 1, 1), drop_unassigned=True)
    assert len(ds) == 4 and ds.num_unassigned == 1  # Sydney is in no cell
    item = ds[3]
    img = item["image"]
    assert img.shape == (3, 12, 16) and img.dtype == torch.float32
    assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0
    assert item["cell"] == part.assign(35.68, 139.7) and (item["lat"], item["lon"]) == (35.68, 139.7)
    keep = partition_dataset(rec, part, as_is)
    assert len(keep) == 5 and keep[4]["cell"] == -1 and keep[4]["index"] == 4
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, 12, 16) and batch["cell"].dtype == torch.int64
    with pytest.raises(MBV1Error, match="no training photo"):
        partition_dataset(rec.subset([4]), part, as_is, drop_unassigned=True)


@pytest.mark.assets
def test_real_phone_photos_gps(face_api_root):
    """face-api's demo photos carry a real phone's GPS: 37.3196 N, 121.9465 W (San Jose)."""
    records, skipped = scan_folder(face_api_root / "package" / "demo")
    assert len(records) == 6 and skipped == []
    lat, lon = exif_gps(face_api_root / "package" / "demo" / "sample1.jpg")
    assert (round(lat, 4), round(lon, 4)) == (37.3196, -121.9465)
    assert np.all(np.abs(records.lat - 37.3196) < 1e-3)
    assert np.all(np.abs(records.lon + 121.946) < 3e-3)
