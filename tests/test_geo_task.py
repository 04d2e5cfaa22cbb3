"""The geolocation Task (engine contract): data sources, partition in the meta, refusal of a
foreign partition, loss, evaluation with the prior, paper rows and Table 11's cost rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mbv1.engine.config import load_config
from mbv1.errors import MBV1Error
from mbv1.geo import sources
from mbv1.geo.cells import Partition, build_partition
from mbv1.geo.costs import geo_cost_rows
from mbv1.geo.data import gps_exif, read_csv
from mbv1.geo.synthetic import make_synthetic_geo
from mbv1.tasks import get_task
from mbv1.tasks.geolocation import (
    GeolocationTask,
    partition_from_meta,
    partition_info,
)

FAST = ["model.alpha=0.25", "model.resolution=32", "train.workers=0", "train.batch_size=8",
        "partition.t1=10", "partition.t2=2", "data.augment=none", "model.dropout=0"]



@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_synthetic_geo(tmp_path_factory.mktemp("geo") / "s", num_train=40, num_test=10,
                              size=32, seed=1)


def task_for(data, *overrides, **options):
    cfg = load_config(GeolocationTask, None, [*FAST, *overrides],
                      {"data.path": str(data), **options})
    return GeolocationTask(cfg)


def test_registered():
    assert get_task("geolocation") is GeolocationTask
    assert GeolocationTask.primary_metric == "within_2500km"


def test_sources_set_folder_csv_and_held_out(synth, tmp_path):
    s = sources.training_splits(str(synth.root))
    assert len(s.train.records) == 40 and len(s.val.records) == 10
    assert s.val.name.startswith("test.csv of") and "10 photos" in s.val.name
    s = sources.training_splits(str(synth.train_csv), val_split=0.25, split_seed=3)
    assert (len(s.train.records), len(s.val.records)) == (30, 10)
    assert "held-out 0.25" in s.val.name and "seed 3" in s.val.name
    again = sources.training_splits(str(synth.train_csv), val_split=0.25, split_seed=3)
    assert again.val.records.paths == s.val.records.paths  # the split does not move
    assert not set(s.val.records.paths) & set(s.train.records.paths)
    s = sources.training_splits(str(synth.train_csv), str(synth.test_csv))
    assert len(s.train.records) == 40 and len(s.val.records) == 10
    assert sources.training_splits(str(synth.train_csv), val_split=0.0).val is None
    assert len(sources.eval_source(str(synth.root)).records) == 10  # a set folder: test.csv
    with pytest.raises(MBV1Error, match="needs data"):
        sources.training_splits(None)
    with pytest.raises(MBV1Error, match="not found"):
        sources.training_splits(str(tmp_path / "nope"))
    assert sources.same_path(str(synth.root), str(synth.root) + "/")


def test_exif_folder_reports_photos_without_gps(tmp_path, capsys):
    for name, gps in (("a.jpg", (48.8566, 2.3522)), ("b.jpg", (-33.8688, 151.2093)),
                      ("c.jpg", None)):
        img = Image.new("RGB", (16, 16), (90, 120, 200))
        img.save(tmp_path / name, **({"exif": gps_exif(*gps)} if gps else {}))
    src = sources.read_source(str(tmp_path))
    assert len(src.records) == 2 and [p.name for p, _ in src.skipped] == ["c.jpg"]
    assert "1 without GPS left out" in src.name
    sources.report_skipped(src)
    err = capsys.readouterr().err
    assert "c.jpg: no GPS in EXIF" in err and "not guessed" in err
    (tmp_path / "a.jpg").unlink()
    (tmp_path / "b.jpg").unlink()
    with pytest.raises(MBV1Error, match="no photo in .* has a GPS position"):
        sources.read_source(str(tmp_path))


def test_datasets_partition_and_meta(synth, tmp_path):
    task = task_for(synth.root)
    data = task.build_datasets()
    part = task.partition
    rec = read_csv(synth.train_csv)
    assert part.sha256 == build_partition(rec.lat, rec.lon, t1=10, t2=2).sha256
    assert len(data.train) == int((part.assign(rec.lat, rec.lon) >= 0).sum())
    assert len(data.val) == 10 and data.val_split.startswith("test.csv of")
    item = data.train[0]
    assert item["image"].shape == (3, 32, 32) and 0 <= item["cell"] < len(part)
    info = task.meta(data)
    assert info["partition_sha256"] == part.sha256 and info["labels"] == part.tokens
    assert info["partition_csv"].encode() == part.to_csv_bytes()
    assert info["partition_config"] == {"t1": 10, "t2": 2, "min_level": 0, "max_level": 30}
    assert partition_from_meta(info).sha256 == part.sha256
    task.save_partition(tmp_path)
    assert Partition.load(tmp_path / "partition.csv").sha256 == part.sha256
    with pytest.raises(MBV1Error, match="edited meta"):
        partition_from_meta({**info, "partition_sha256": "0" * 64})
    with pytest.raises(MBV1Error, match="partition"):
        partition_from_meta({**info, "partition_csv": "token,level\n"})
    with pytest.raises(MBV1Error, match="holds no partition"):
        partition_from_meta({})
    with pytest.raises(MBV1Error, match="partition.smoothing"):
        task_for(synth.root, "train.label_smoothing=0.1").build_datasets()


def test_model_refuses_another_partition(synth, tmp_path):
    task = task_for(synth.root)
    info = task.meta(task.build_datasets())
    model = task.build_model(info)
    assert model.partition_sha256 == info["partition_sha256"]
    rec = read_csv(synth.train_csv)
    other = build_partition(rec.lat, rec.lon, t1=5, t2=1)
    with pytest.raises(MBV1Error, match="trained with partition sha256") as e:
        model.check_partition(other)
    assert "\n" not in str(e.value)
    other.save(tmp_path / "other.csv")
    evaluator = task_for(synth.root, f"partition.file={tmp_path / 'other.csv'}")
    with pytest.raises(MBV1Error, match="this checkpoint was trained with partition"):
        evaluator.build_model(info)
    task.partition.save(tmp_path / "own.csv")
    task_for(synth.root, f"partition.file={tmp_path / 'own.csv'}").build_model(info)  # accepted


def test_overfit_one_batch_and_evaluate(synth):
    torch.manual_seed(0)
    task = task_for(synth.root, "partition.smoothing=0.1")
    data = task.build_datasets()
    model = task.build_model(task.meta(data))
    batch = task.collate([data.train[i] for i in range(8)])
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    first = None
    for _ in range(40):
        out = task.forward_loss(model, task.to_device(batch))
        assert set(out) == {"loss", "ce"}
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        first = first if first is not None else out["ce"].item()
    assert out["ce"].item() < 0.2 * first
    loader = torch.utils.data.DataLoader(data.val, batch_size=4, collate_fn=task.collate)
    m = task.evaluate(model.eval(), loader)
    assert m.primary == "within_2500km" and m.split.startswith("test.csv of")
    assert set(m.values) >= {"within_1km", "within_25km", "within_200km", "within_750km",
                             "within_2500km", "median_km", "cell_top1", "cell_top5"}
    assert m.values["images"] == 10 and len(m.details["photos"]) == 10
    prior = m.details["prior"]
    best = int(np.argmax(task.partition.counts))
    assert m.details["prior_cell"]["token"] == task.partition.tokens[best]
    # the prior places every photo at the most populous cell's centroid: recompute it
    from mbv1.geo.distance import haversine_km

    test = read_csv(synth.test_csv)
    km = haversine_km(task.partition.centroid_lat[best], task.partition.centroid_lon[best],
                      test.lat, test.lon)
    assert prior["count"] == 10
    assert prior["within_2500km"] == pytest.approx(100.0 * np.mean(km <= 2500))
    assert prior["median_km"] == pytest.approx(float(np.median(km)), rel=1e-6)
    lines = task.describe(m, task.meta(data))
    text = "\n".join(lines)
    assert "PlaNet MobileNet" in text and "prior" in lines[1] and "79.3" in text
    assert "per photo" in text and "km" in lines[-1]
    rows = task.paper_rows(task.meta(data))
    assert rows[0]["value"] == 79.3 and rows[0]["params_m"] == 13 and not rows[0]["comparable"]


def test_eval_dataset_is_the_given_data_or_the_trained_split(synth):
    task = task_for(synth.train_csv, "data.val_split=0.2")
    info = task.meta(task.build_datasets())
    ds, split = task.build_eval_dataset(info)  # same data as trained: its held-out split
    assert len(ds) == 8 and split.startswith("held-out 0.2")
    other = task_for(synth.test_csv)
    other.build_model(info)
    ds, split = other.build_eval_dataset(info)  # other data: all of it
    assert len(ds) == 10 and split.startswith(str(synth.test_csv))
    none = task_for(synth.train_csv, "data.val_split=0")
    info0 = none.meta(none.build_datasets())
    with pytest.raises(MBV1Error, match="no evaluation split"):
        none.build_eval_dataset(info0)


def test_cost_rows_beside_table11():
    rows = geo_cost_rows()
    assert [r.quantity for r in rows] == ["mult-adds", "params"]
    assert all(r.ok for r in rows) and "9,554 cells" in rows[0].model
    assert rows[1].mbv1 == pytest.approx(12.999826) and rows[0].paper == 0.58
    from mbv1.tasks import cost_rows

    assert any(r.table == "Table 11" for r in cost_rows())


def test_partition_info_roundtrip(synth):
    rec = read_csv(synth.train_csv)
    part = build_partition(rec.lat, rec.lon, t1=8, t2=1)
    assert partition_from_meta(partition_info(part)).sha256 == part.sha256
