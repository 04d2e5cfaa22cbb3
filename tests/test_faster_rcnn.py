"""Faster R-CNN-MobileNetV1 (model.framework=faster-rcnn): Table 13's two cost rows, the head's
output contract, the RoI crop against torchvision's roi_align, a tiny engine run whose
checkpoint round-trips and runs through `mbv1 detect`, and its one-line errors."""

from __future__ import annotations

import json

import pytest
import torch
from torchvision.ops import MultiScaleRoIAlign, roi_align

from mbv1.backbone.costs import count_costs
from mbv1.checkpoint import load_checkpoint, load_model
from mbv1.datasets.synthetic_coco import make_synthetic_coco
from mbv1.detection import faster_rcnn
from mbv1.detection.costs import faster_rcnn_costs
from mbv1.detection.faster_rcnn import FasterRCNNConfig, MobileNetFasterRCNN
from mbv1.detection.roi_crop import roi_crop
from mbv1.errors import MBV1Error
from tests.test_cli import mbv1

TINY = {"num_classes": 4, "alpha": 0.25, "anchor_sizes": (16.0, 32.0), "proposals": 16,
        "rpn_depth": 32}


def test_table13_rows_counted_from_the_built_model():
    """300 and 600 (square inputs, 300 proposals, the box classifier at 7x7): 25.2 / 30.5 B
    mult-adds and 6.1 M params, as printed; the TF OD API layout (2x2 max-pool) is cheaper."""
    c300 = faster_rcnn_costs(300, 300, roi_pool=1)
    c600 = faster_rcnn_costs(600, 300, roi_pool=1)
    assert round(c300.mult_adds / 1e9, 1) == 25.2 and round(c600.mult_adds / 1e9, 1) == 30.5
    assert c300.params == c600.params == 6_063_939 and round(c300.params / 1e6, 1) == 6.1
    assert c300.mult_adds == 25_223_422_912
    assert round(faster_rcnn_costs(300, 300).mult_adds / 1e9, 1) == 9.5  # TF layout


def test_cost_shortcut_equals_one_pass_per_proposal():
    cfg = dict(TINY, proposals=7)
    model = MobileNetFasterRCNN(FasterRCNNConfig(**cfg))
    slow = count_costs(model, 64, forward=lambda m, x: m.cost_pass(x))
    fast = faster_rcnn_costs(64, 7, **{k: v for k, v in cfg.items() if k != "proposals"})
    assert (fast.mult_adds, fast.params) == (slow.mult_adds, slow.params)
    assert {k: v.mult_adds for k, v in fast.by_type.items()} == \
        {k: v.mult_adds for k, v in slow.by_type.items()}


def test_head_returns_the_same_raw_tensors_in_train_and_eval():
    torch.manual_seed(0)
    model = MobileNetFasterRCNN(FasterRCNNConfig(**TINY))
    x = torch.randn(2, 3, 64, 96)
    shapes = {}
    for mode in (False, True):
        model.train(mode)
        with torch.no_grad():
            out = model(x)
        shapes[mode] = {k: tuple(v.shape) for k, v in out.items()}
        n = out["num_proposals"]
        assert (n > 0).all() and (n <= 16).all()
        for i, m in enumerate(n.tolist()):  # rows past the proposals are zero padding
            assert not out["class_logits"][i, m:].any() and not out["proposals"][i, m:].any()
            b = out["proposals"][i, :m]
            assert (b[:, 2] >= b[:, 0]).all() and (b[:, 2] <= 96).all() and (b[:, 3] <= 64).all()
    assert shapes[False] == shapes[True] == {
        "proposals": (2, 16, 4), "num_proposals": (2,), "class_logits": (2, 16, 5),
        "box_regression": (2, 16, 20)}
    model.eval()
    dets = model.detect(model(x), 64, 96, conf=0.0, max_det=10)
    assert len(dets) == 2 and all(len(d["scores"]) <= 10 for d in dets)
    assert all(((d["boxes_xyxy"] >= 0) & (d["boxes_xyxy"] <= 1)).all() for d in dets)
    assert all(((d["labels"] >= 0) & (d["labels"] < 4)).all() for d in dets)
    only = model.detect(model(x), 64, 96, conf=0.0, classes=(2,))
    assert all((d["labels"] == 2).all() for d in only)


def test_losses_reach_every_parameter_with_and_without_boxes():
    torch.manual_seed(0)
    model = MobileNetFasterRCNN(FasterRCNNConfig(**TINY)).train()
    x = torch.randn(2, 3, 64, 64)
    losses = model(x, ([torch.tensor([[0.1, 0.2, 0.6, 0.7]]), torch.zeros(0, 4)],
                       [torch.tensor([3]), torch.zeros(0, dtype=torch.long)]))
    assert set(losses) == {"loss", "rpn_objectness", "rpn_box", "box_cls", "box_reg"}
    losses["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())
    bn = model.body.conv13.pointwise.bn
    model.eval()
    before = bn.running_mean.clone()
    with torch.no_grad():  # the validation loss leaves BatchNorm statistics alone
        model.loss(x, [torch.tensor([[0.1, 0.2, 0.6, 0.7]])] * 2, [torch.tensor([1])] * 2)
    assert torch.equal(before, bn.running_mean)


HAND_BOXES = [
    torch.tensor([[0.0, 0.0, 144.0, 112.0], [10.0, 20.0, 30.0, 25.0], [-20.0, -30.0, 50.0, 200.0],
                  [100.0, 5.0, 101.0, 6.0]], dtype=torch.float64),
    torch.tensor([[3.0, 4.0, 60.0, 90.0]], dtype=torch.float64),
]


@pytest.mark.parametrize("ratio", [1, 2, 3])
def test_roi_crop_equals_torchvision_roi_align_on_hand_boxes(ratio):
    """Values and gradients, boxes inside, across and outside the map, under one cell."""
    torch.manual_seed(0)
    f = torch.randn(2, 5, 7, 9, dtype=torch.float64, requires_grad=True)
    ours, ref = roi_crop(f, HAND_BOXES, 14, 1 / 16, ratio), roi_align(f, HAND_BOXES, 14, 1 / 16, ratio)
    torch.testing.assert_close(ours, ref)
    w = torch.randn_like(ref)
    (g1,), (g2,) = torch.autograd.grad((ours * w).sum(), f), torch.autograd.grad((ref * w).sum(), f)
    torch.testing.assert_close(g1, g2)


def test_model_crop_is_multiscale_roi_align():
    model = MobileNetFasterRCNN(FasterRCNNConfig(**TINY))
    feats = {"0": torch.randn(2, model.backbone.out_channels, 6, 8)}
    boxes = [b.float().clamp(0, 96) for b in HAND_BOXES]
    ref = MultiScaleRoIAlign(["0"], 14, 2)(feats, boxes, [(96, 128)] * 2)
    torch.testing.assert_close(model.roi_heads.box_roi_pool(feats, boxes, [(96, 128)] * 2), ref)


def test_bad_meta_is_one_line():
    with pytest.raises(MBV1Error, match="no 'faster_rcnn'"):
        faster_rcnn.build_model({"ssd": {}})
    with pytest.raises(MBV1Error, match="not a valid FasterRCNNConfig"):
        faster_rcnn.build_model({"faster_rcnn": {"num_classes": 2, "crop_size": 15}})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One epoch of `mbv1 train detection --set model.framework=faster-rcnn` on 8 images."""
    root = tmp_path_factory.mktemp("frcnn")
    data = make_synthetic_coco(root / "coco", num_train=8, num_val=4, size=64, seed=2)
    r = mbv1("train", "detection", "--data", data.root, "--set", "model.framework=faster-rcnn",
             "--set", "model.alpha=0.25", "--set", "model.resolution=64",
             "--set", "faster_rcnn.anchor_sizes=[16, 32]", "--set", "faster_rcnn.proposals=16",
             "--set", "faster_rcnn.rpn_depth=32", "--set", "train.epochs=1",
             "--set", "train.batch_size=4", "--set", "train.workers=0",
             "--set", "run.tensorboard=false", "--set", f"run.project={root / 'runs'}")
    assert r.returncode == 0, r.stderr[-2000:]
    return data, root / "runs" / "detection" / "exp" / "best.pt"


def test_engine_checkpoint_round_trip_and_eval(trained):
    data, ckpt = trained
    meta = load_checkpoint(ckpt)["meta"]
    assert meta["faster_rcnn"]["proposals"] == 16 and "ssd" not in meta
    assert meta["paper"][0]["model"] == "Faster-RCNN 300 MobileNet"
    assert "AP" in meta["metrics"]
    loaded = load_model(ckpt, "detection", faster_rcnn.build_model)
    assert isinstance(loaded.model, MobileNetFasterRCNN) and not loaded.model.training
    again = load_model(ckpt, "detection", faster_rcnn.build_model).model
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = loaded.model(x), again(x)
    for k in a:
        torch.testing.assert_close(a[k], b[k])
    r = mbv1("eval", "detection", ckpt, "--data", data.root, "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "AP" in json.loads(r.stdout)["metrics"]


def test_detect_cli_runs_a_faster_rcnn_checkpoint(trained, tmp_path):
    data, ckpt = trained
    r = mbv1("detect", data.val_images, "--weights", ckpt, "--conf", "0.0", "--project",
             tmp_path, "--max-det", "5")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "SSD checkpoints only for now" in r.stdout + r.stderr
    preds = json.loads((tmp_path / "predict" / "predictions.json").read_text())
    assert preds and all(len(p["bbox"]) == 4 and 1 <= p["category_id"] <= 4 for p in preds)
    assert len(list((tmp_path / "predict").glob("*.jpg"))) == 4
    assert "Speed:" in r.stdout
    r = mbv1("detect", data.val_images, "--weights", ckpt, "--backend", "onnxruntime",
             "--no-save")
    assert r.returncode == 2 and "SSD checkpoints only" in r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith("device: ")]
    assert "Traceback" not in r.stderr and len(lines) == 1  # besides the --device auto choice
