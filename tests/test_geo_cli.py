"""Geolocation from the command line, for real (subprocess ``python -m mbv1``) on tiny data:
data geo-synthetic → train geolocation → eval → geolocate, a partition export, the refusal of
a foreign partition, and the real EXIF photos of face-api's demo (asset)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from mbv1.checkpoint import load_checkpoint
from mbv1.geo.cells import partition_from_meta
from mbv1.geo.distance import haversine_km

ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TRAIN = ["--epochs", "1", "--batch-size", "16", "--alpha", "0.25", "--resolution", "32",
         "--workers", "0", "--set", "partition.t1=10", "--set", "partition.t2=2",
         "--set", "run.tensorboard=false", "--set", "train.threads=1",
         "--set", "data.augment=light", "--set", "data.hflip=false"]


def mbv1(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mbv1", *map(str, args)], check=False,
                          capture_output=True, text=True, cwd=cwd, env={**os.environ, **ENV})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A synthetic set (40 train / 10 test JPEGs with EXIF GPS) and a one-epoch run on it."""
    root = tmp_path_factory.mktemp("geocli")
    r = mbv1("data", "geo-synthetic", root / "synth", "--train", 40, "--test", 10, "--size", 32)
    assert r.returncode == 0, r.stderr
    assert "wrote 40 train and 10 test photos" in r.stdout
    r = mbv1("train", "geolocation", "--data", root / "synth", *TRAIN,
             "--set", f"run.project={root / 'runs'}")
    assert r.returncode == 0, r.stdout + r.stderr
    run = root / "runs" / "geolocation" / "exp"
    return root, run, r.stdout


def test_train_keeps_the_partition_with_the_weights(trained):
    import torch

    root, run, out = trained
    assert "partition:" in out and "cells at S2 levels" in out and (run / "best.pt").is_file()
    ckpt = torch.load(run / "best.pt", weights_only=True)
    meta = ckpt["meta"]
    sha = hashlib.sha256(meta["partition_csv"].encode()).hexdigest()
    assert meta["partition_sha256"] == sha and meta["num_cells"] == len(meta["labels"])
    assert meta["metrics"]["primary"] == "within_2500km"
    assert meta["metrics"]["split"].startswith("test.csv of")
    r = mbv1("data", "geo-partition", run, root / "exported.csv")  # export the checkpoint's
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256((root / "exported.csv").read_bytes()).hexdigest() == sha
    assert hashlib.sha256((run / "partition.csv").read_bytes()).hexdigest() == sha


def test_eval_prints_table11_beside_mbv1_and_the_prior(trained):
    root, run, _ = trained
    test_csv = root / "synth" / "test.csv"
    r = mbv1("eval", "geolocation", run, "--data", test_csv, "--workers", "0")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for text in ("Im2GPS", "PlaNet MobileNet", "mbv1", "prior", "continent 2500 km", "79.3",
                 "street 1 km", "median error km", f"{test_csv} (10 photos)", "per continent",
                 "per photo"):
        assert text in out, text
    r = mbv1("eval", "geolocation", run, "--data", test_csv, "--workers", "0", "--json")
    got = json.loads(r.stdout)
    assert got["metrics"]["primary"] == "within_2500km" and got["metrics"]["images"] == 10
    assert got["details"]["prior"]["count"] == 10 and len(got["details"]["photos"]) == 10
    assert got["paper"][0]["model"] == "PlaNet MobileNet"


def test_geolocate_json(trained):
    root, run, _ = trained
    img = root / "synth" / "images" / "test" / "00000.jpg"
    own = root / "own.csv"
    partition_from_meta(load_checkpoint(run)["meta"]).save(own)
    r = mbv1("geolocate", img, "-w", run, "-k", "3", "--json", "--partition", own)
    assert r.returncode == 0, r.stderr  # its own partition is accepted
    [a] = json.loads(r.stdout)
    assert a["error"] is None and -90 <= a["lat"] <= 90 and -180 <= a["lon"] <= 180
    assert a["place"]["name"] and a["place"]["country"]
    probs = [c["prob"] for c in a["cells"]]
    assert len(probs) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-6
    assert (a["lat"], a["lon"]) == (a["cells"][0]["lat"], a["cells"][0]["lon"])
    truth = a["exif_gps"]  # the synthetic JPEGs carry their position in EXIF
    assert a["error_km"] == pytest.approx(haversine_km(a["lat"], a["lon"], truth["lat"],
                                                       truth["lon"]), abs=1e-2)


def test_a_foreign_partition_is_refused(trained):
    root, run, _ = trained
    r = mbv1("data", "geo-partition", root / "synth", root / "other.csv", "--t1", "5", "--t2", "1")
    assert r.returncode == 0 and "cells" in r.stdout, r.stderr
    img = root / "synth" / "images" / "test" / "00001.jpg"
    for args in (("geolocate", img, "-w", run, "--partition", root / "other.csv"),
                 ("eval", "geolocation", run, "--data", root / "synth" / "test.csv",
                  "--workers", "0", "--set", f"partition.file={root / 'other.csv'}")):
        r = mbv1(*args)
        assert r.returncode == 2, r.stdout + r.stderr
        assert "trained with partition sha256" in r.stderr
        lines = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith("device: ")]
        assert len(lines) == 1 and "Traceback" not in r.stderr  # besides the device choice


@pytest.mark.assets
def test_real_exif_photos_geolocate_and_eval(trained, face_api_root):
    """face-api's demo photos: a real phone's EXIF GPS (37.3196 N, 121.9465 W, San Jose)
    read, assigned and measured; the synthetic model's answer itself is meaningless."""
    _, run, _ = trained
    demo = face_api_root / "package" / "demo"
    r = mbv1("geolocate", demo / "sample1.jpg", "-w", run)
    assert r.returncode == 0, r.stderr
    assert "EXIF GPS 37.3196, -121.9465" in r.stdout and "near" in r.stdout
    assert "top cells:" in r.stdout and "km away" in r.stdout
    r = mbv1("eval", "geolocation", run, "--data", demo, "--workers", "0")
    assert r.returncode == 0, r.stderr
    assert f"EXIF GPS photos of {demo} (6 photos)" in r.stdout
    assert r.stdout.count("37.3196, -121.94") == 6 and "North America" in r.stdout
