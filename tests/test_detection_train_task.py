"""The detection task on the engine: data layouts, a real (tiny) train → eval run, meta."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from mbv1.checkpoint import load_checkpoint
from mbv1.datasets.synthetic_coco import make_synthetic_coco
from mbv1.engine import load_config, train
from mbv1.errors import MBV1Error
from mbv1.tasks.detection import DetectionTask


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_synthetic_coco(tmp_path_factory.mktemp("synth"), num_train=16, num_val=6,
                               size=64, seed=1)


def config(tmp_path, **opts):
    base = {"model.alpha": 0.25, "model.resolution": 64, "train.batch_size": 8,
            "train.workers": 0, "train.device": "cpu", "train.epochs": 1,
            "train.channels_last": False, "run.project": str(tmp_path / "runs"),
            "run.tensorboard": False}
    return load_config(DetectionTask, options={**base, **opts})


def test_datasets_from_data_dir(synth, tmp_path):
    task = DetectionTask(config(tmp_path, **{"data.path": str(synth.root)}))
    ds = task.build_datasets()
    assert len(ds.train) == 16 and len(ds.val) == 6
    assert ds.info["labels"] == ["circle", "square", "triangle", "cross"]
    assert ds.info["category_ids"] == [1, 2, 3, 4] and ds.info["num_classes"] == 4
    assert ds.info["preprocess"]["input_size"] == 64 and ds.info["ssd"]["num_classes"] == 4
    assert "val" in ds.val_split and "6 images" in ds.val_split
    batch = task.collate([ds.train[i] for i in range(3)])
    light = DetectionTask(config(tmp_path, **{"data.path": str(synth.root),
                                              "data.augment": "light"})).build_datasets()
    assert not light.train.transform.crop and light.train.transform.expand_max == 1.0
    assert batch["image"].shape == (3, 3, 64, 64)
    model = task.build_model(ds.info)
    out = task.forward_loss(model, batch)
    assert set(out) == {"loss", "loc", "cls", "num_pos"} and torch.isfinite(out["loss"])


def test_coco2017_layout_explicit_paths_and_held_out_split(synth, tmp_path):
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    shutil.copy(synth.train_json, root / "annotations" / "instances_train2017.json")
    shutil.copytree(synth.train_images, root / "train2017")
    task = DetectionTask(config(tmp_path, **{"data.path": str(root), "data.val_split": 0.25}))
    ds = task.build_datasets()  # no val file: a quarter of train is held out
    assert len(ds.train) == 12 and len(ds.val) == 4 and "held out" in ds.val_split
    assert not set(ds.train.image_ids) & set(ds.val.image_ids)
    task = DetectionTask(config(tmp_path, **{
        "data.train_json": str(synth.train_json), "data.train_images": str(synth.train_images),
        "data.val_json": str(synth.val_json), "data.val_images": str(synth.val_images)}))
    assert len(task.build_datasets().val) == 6
    with pytest.raises(MBV1Error, match="no training annotations"):
        DetectionTask(config(tmp_path, **{"data.path": str(tmp_path / "empty")})).build_datasets()


def test_learns_the_training_shapes(synth, tmp_path):
    """80 epochs on the 16 training images, evaluated on them by pycocotools: the whole path
    (targets, matcher, loss, box coder, postprocess, category ids) must be right to score.
    Measured: AP 76.6, AP50 99.8 (an untrained model: ~0)."""
    cfg = config(tmp_path, **{
        "data.train_json": str(synth.train_json), "data.train_images": str(synth.train_images),
        "data.val_json": str(synth.train_json), "data.val_images": str(synth.train_images),
        "data.augment": "none", "train.epochs": 80, "train.eval_every": 1000,
        "train.optimizer": "adamw", "train.schedule": "cosine", "train.weight_decay": 0.0})
    m = train(DetectionTask, cfg, tty=False).metrics
    assert m["AP50"] > 90.0 and m["AP"] > 50.0, m


def test_train_eval_and_checkpoint_meta(synth, tmp_path):
    cfg = config(tmp_path, **{"data.path": str(synth.root)})
    res = train(DetectionTask, cfg, tty=False)
    m = res.metrics
    assert m["primary"] == "AP" and "val" in m["split"]
    assert {"AP", "AP50", "AP75", "APs", "loss"} <= set(m)  # what it learns: the next test
    ckpt = load_checkpoint(res.run_dir / "best.pt")
    meta = ckpt["meta"]
    assert meta["labels"] == ["circle", "square", "triangle", "cross"]
    assert meta["ssd"]["alpha"] == 0.25 and meta["preprocess"]["input_size"] == 64
    assert meta["paper"][0]["model"] == "SSD 300 MobileNet" and not meta["paper"][0]["comparable"]
    # The stored SSD config rebuilds the model that the weights belong to.
    from mbv1.detection.ssd import SSD, SSDConfig

    SSD(SSDConfig(**meta["ssd"])).load_state_dict(ckpt["model"])

    # Fine-tuning from that checkpoint with another label set: body and extras load, the
    # class predictors (other shape) are skipped.
    one = tmp_path / "one"
    (one / "annotations").mkdir(parents=True)
    data = json.loads(synth.val_json.read_text())
    data["categories"] = data["categories"][:1]
    data["annotations"] = [a for a in data["annotations"] if a["category_id"] == 1]
    for split in ("train", "val"):
        (one / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
        shutil.copytree(synth.val_images, one / "images" / split)
    cfg = config(tmp_path, **{"data.path": str(one), "model.init": str(res.run_dir / "best.pt"),
                              "train.batch_size": 2, "run.name": "finetune"})
    res2 = train(DetectionTask, cfg, tty=False)
    assert load_checkpoint(res2.run_dir / "last.pt")["meta"]["labels"] == ["circle"]


def test_evaluate_with_no_detections(synth, tmp_path):
    cfg = config(tmp_path, **{"data.path": str(synth.root)})
    cfg.set("ssd.eval_conf", 1.0)  # sigmoid scores never reach 1: nothing is detected
    task = DetectionTask(cfg)
    ds = task.build_datasets()
    model = task.build_model(ds.info).eval()
    loader = torch.utils.data.DataLoader(ds.val, batch_size=4, collate_fn=task.collate)
    with torch.no_grad():
        m = task.evaluate(model, loader)
    assert m.values["AP"] == 0.0 and m.details["detections"] == 0 and m.split == ds.val_split
    assert any("Table 13" in line for line in task.describe(m, ds.info))
