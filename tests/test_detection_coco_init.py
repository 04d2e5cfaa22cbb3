"""Transfer learning from the real COCO detector: ``model.init`` = the converted SSDLite-
MobileNetV2 brings its architecture, its body, extras and box predictors, and the class rows
of the classes whose names the new data shares."""

from __future__ import annotations

import json

import pytest
import torch

from mbv1.datasets.synthetic_coco import make_synthetic_coco
from mbv1.engine import load_config, train
from mbv1.tasks.detection import DetectionTask

NAMES = ["person", "car", "kite", "cross"]  # three COCO names and one that is not


@pytest.fixture(scope="module")
def coco_ckpt():
    from tests.conftest import require_asset

    require_asset("coco-ssd")
    from mbv1.detection.coco_model import default_checkpoint

    return default_checkpoint()


@pytest.fixture(scope="module")
def renamed(tmp_path_factory):
    """The synthetic shapes set with COCO names for three of its four categories."""
    synth = make_synthetic_coco(tmp_path_factory.mktemp("synth"), num_train=8, num_val=4,
                                size=64, seed=3)
    for path in (synth.train_json, synth.val_json):
        data = json.loads(path.read_text())
        for c, name in zip(data["categories"], NAMES):
            c["name"] = name
        path.write_text(json.dumps(data))
    return synth


def config(tmp_path, **opts):
    base = {"model.resolution": 96, "train.batch_size": 4, "train.workers": 0,
            "train.device": "cpu", "train.epochs": 1, "train.channels_last": False,
            "run.project": str(tmp_path / "runs"), "run.tensorboard": False}
    return load_config(DetectionTask, options={**base, **opts})


def test_coco_init_brings_architecture_body_and_shared_class_rows(renamed, coco_ckpt, tmp_path):
    from mbv1.backbone.pretrained import read_init
    from mbv1.checkpoint import load_checkpoint
    from mbv1.engine.finetune import load_init

    cfg = config(tmp_path, **{"data.path": str(renamed.root), "model.init": str(coco_ckpt)})
    task = DetectionTask(cfg)
    assert cfg.model.backbone == "mobilenet_v2" and cfg.ssd.head == "ssdlite"
    assert cfg.model.padding == "same" and cfg.ssd.interpolated_last
    assert "model.backbone=mobilenet_v2" in task.adopted
    ds = task.build_datasets()
    model = task.build_model(ds.info)
    init = read_init(str(coco_ckpt))
    lines = load_init(model, init)
    assert "468/480 tensors" in lines[0]  # all but the six class 1x1 convs (90 -> 4 classes)
    lines = task.after_init(model, init)
    assert len(lines) == 1 and "person, car, kite" in lines[0] and "6/6" in lines[0]
    src = load_checkpoint(coco_ckpt)["model"]
    for p, a in enumerate(model.num_anchors):
        w = model.class_heads[p][1].weight.view(a, 5, -1)
        w_src = src[f"class_heads.{p}.1.weight"].view(a, 91, -1)
        # logit 0 background, then person (COCO 1), car (3), kite (38); "cross" stays fresh
        for dst, s in ((0, 0), (1, 1), (2, 3), (3, 38)):
            torch.testing.assert_close(w[:, dst], w_src[:, s], rtol=0, atol=0)
    torch.testing.assert_close(model.backbone.conv_stem.conv.weight,
                               src["backbone.conv_stem.conv.weight"], rtol=0, atol=0)


def test_explicit_settings_win_over_the_init(renamed, coco_ckpt, tmp_path):
    cfg = config(tmp_path, **{"data.path": str(renamed.root), "model.init": str(coco_ckpt),
                              "ssd.head": "conv"})
    DetectionTask(cfg)
    assert cfg.ssd.head == "conv" and cfg.model.backbone == "mobilenet_v2"


def test_fine_tune_from_coco_runs_and_saves_an_ssdlite_v2(renamed, coco_ckpt, tmp_path):
    from mbv1.checkpoint import load_checkpoint

    cfg = config(tmp_path, **{"data.path": str(renamed.root), "model.init": str(coco_ckpt),
                              "model.freeze": "block10"})
    result = train(DetectionTask, cfg)
    ckpt = load_checkpoint(result.run_dir / "last.pt")
    ssd = ckpt["meta"]["ssd"]
    assert ssd["backbone"] == "mobilenet_v2" and ssd["head"] == "ssdlite"
    assert ssd["num_classes"] == 4 and ssd["anchors"]["interpolated_last"]
    src = load_checkpoint(coco_ckpt)["model"]
    for k in ("backbone.block10.project.conv.weight", "backbone.conv_stem.conv.weight"):
        torch.testing.assert_close(ckpt["model"][k], src[k], rtol=0, atol=0)  # frozen
    assert not torch.equal(ckpt["model"]["backbone.conv_head.conv.weight"],
                           src["backbone.conv_head.conv.weight"])  # trained
