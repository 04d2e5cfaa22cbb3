"""SSD parts against independent implementations (torchvision, the face model's own anchors)."""

import numpy as np
import pytest
import torch
from torchvision.models.detection._utils import BoxCoder
from torchvision.ops import nms

from mbv1.backbone.costs import count_costs
from mbv1.detection import box_coder
from mbv1.detection.anchors import box_specs, generate_anchors
from mbv1.detection.postprocess import PostprocessConfig, postprocess
from mbv1.detection.preprocess import Preprocess, resize_bilinear_legacy
from mbv1.detection.ssd import SSD, SSDConfig


def _random_boxes(n, g):
    xy = torch.rand(n, 2, generator=g) * 0.7
    wh = torch.rand(n, 2, generator=g) * 0.3 + 0.02
    return torch.cat([xy, xy + wh], 1)


def test_box_coder_round_trip_and_torchvision():
    g = torch.Generator().manual_seed(0)
    boxes, anchor_boxes = _random_boxes(500, g), _random_boxes(500, g)
    a = anchor_boxes
    anchors = torch.stack([(a[:, 1] + a[:, 3]) / 2, (a[:, 0] + a[:, 2]) / 2, a[:, 3] - a[:, 1], a[:, 2] - a[:, 0]], 1)
    codes = box_coder.encode(boxes, anchors)
    torch.testing.assert_close(box_coder.decode(codes, anchors), boxes, atol=1e-5, rtol=0)
    # torchvision codes (dx, dy, dw, dh) with weights (wx, wy, ww, wh) = (10, 10, 5, 5).
    tv = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0)).encode_single(boxes, anchor_boxes)
    torch.testing.assert_close(codes, tv[:, [1, 0, 3, 2]], atol=1e-4, rtol=1e-4)


def test_anchor_generator_layout():
    specs = box_specs(6)
    assert [len(s) for s in specs] == [3, 6, 6, 6, 6, 6]
    assert specs[0] == [(0.1, 1.0), (0.2, 2.0), (0.2, 0.5)]
    assert specs[1][1] == pytest.approx((np.sqrt(0.35 * 0.5), 1.0))  # interpolated after ratio 1
    assert specs[5][1] == pytest.approx((np.sqrt(0.95 * 1.0), 1.0))
    anchors = generate_anchors([(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)])
    assert anchors.shape == (1917, 4)
    assert torch.allclose(anchors[0], torch.tensor([0.5 / 19, 0.5 / 19, 0.1, 0.1]))


@pytest.mark.parametrize("size,n", [(300, 1917), (512, 5118), (224, None)])
def test_ssd_any_size(size, n):
    model = SSD(SSDConfig(num_classes=3, alpha=0.25)).eval()
    codes, logits = model(torch.randn(2, 3, size, size))
    anchors = model.anchors_for(size, size)
    assert codes.shape == (2, len(anchors), 4) and logits.shape == (2, len(anchors), 4)
    if n:
        assert len(anchors) == n


def test_ssd300_costs_table13():
    c = count_costs(SSD(SSDConfig(num_classes=90)), 300)
    assert round(c.mult_adds / 1e9, 1) == 1.2 and round(c.params / 1e6, 1) == 6.8


def test_postprocess_matches_torchvision_nms():
    g = torch.Generator().manual_seed(1)
    n_anchors, n_cls = 400, 3
    anchors = torch.cat([torch.rand(n_anchors, 2, generator=g), torch.rand(n_anchors, 2, generator=g) * 0.3 + 0.05], 1)
    codes = torch.randn(1, n_anchors, 4, generator=g) * 0.5
    scores = torch.rand(1, n_anchors, n_cls, generator=g)
    cfg = PostprocessConfig(conf=0.3, iou=0.45, max_det=1000, pre_nms_top_k=10_000)
    (out,) = postprocess(codes, scores, anchors, cfg)
    boxes = box_coder.decode(codes[0], anchors)
    expected = []
    for c in range(n_cls):  # independent: plain per-class torchvision NMS
        keep = scores[0, :, c] >= cfg.conf
        b, s = boxes[keep], scores[0, keep, c]
        for i in nms(b, s, cfg.iou):
            expected.append((c, round(float(s[i]), 6)))
    got = sorted(zip(out["labels"].tolist(), [round(v, 6) for v in out["scores"].tolist()]))
    assert got == sorted(expected)
    assert (out["boxes_xyxy"] >= 0).all() and (out["boxes_xyxy"] <= 1).all()


def test_postprocess_class_filter_and_max_det():
    anchors = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.2, 0.2, 0.1, 0.1]])
    scores = torch.tensor([[[0.9, 0.8], [0.7, 0.95]]])
    (out,) = postprocess(torch.zeros(1, 2, 4), scores, anchors, PostprocessConfig(conf=0.5, classes=(1,)))
    assert out["labels"].tolist() == [1, 1]
    (out,) = postprocess(torch.zeros(1, 2, 4), scores, anchors, PostprocessConfig(conf=0.5, max_det=1))
    assert out["scores"].tolist() == [pytest.approx(0.95)]


def test_tf_legacy_resize():
    # TF legacy bilinear (align_corners=False, half_pixel_centers=False): src = dst * in/out.
    x = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    y = resize_bilinear_legacy(x, 2, 2)
    assert y.flatten().tolist() == [0.0, 2.0, 8.0, 10.0]
    y = resize_bilinear_legacy(x, 8, 8)
    assert y[0, 0, 0, :3].tolist() == [0.0, 0.5, 1.0] and y[0, 0, 0, -1] == 3.0
    # Padding to a square without building it equals padding explicitly.
    img = torch.rand(1, 3, 30, 50) * 255
    padded = torch.nn.functional.pad(img, (0, 0, 0, 20))
    torch.testing.assert_close(resize_bilinear_legacy(img, 16, 16, pad_square=True),
                               resize_bilinear_legacy(padded, 16, 16))


def _tf_legacy_reference(img: np.ndarray, out: int) -> np.ndarray:
    """TF's legacy resize_bilinear kernel written out per pixel (float32, x then y), on the
    image zero-padded bottom/right to a square."""
    h, w, c = img.shape
    side = max(h, w)
    sq = np.zeros((side, side, c), np.float32)
    sq[:h, :w] = img
    scale = np.float32(side / out)
    res = np.empty((out, out, c), np.float32)
    for oy in range(out):
        sy = np.float32(oy) * scale
        y0 = int(np.floor(sy))
        y1, fy = min(y0 + 1, side - 1), np.float32(sy - y0)
        for ox in range(out):
            sx = np.float32(ox) * scale
            x0 = int(np.floor(sx))
            x1, fx = min(x0 + 1, side - 1), np.float32(sx - x0)
            top = sq[y0, x0] + (sq[y0, x1] - sq[y0, x0]) * fx
            bottom = sq[y1, x0] + (sq[y1, x1] - sq[y1, x0]) * fx
            res[oy, ox] = top + (bottom - top) * fy
    return res


@pytest.mark.parametrize("shape", [(9, 14, 3), (14, 9, 3), (40, 23, 3)])
def test_preprocess_equals_tf_legacy_kernel(shape):
    """The fast uint8 path (gathers, in-place blends) is TF's kernel to the last bit."""
    img = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    pre = Preprocess(16, mean=(0.0,) * 3, std=(1 / 255,) * 3, pad="bottom-right",
                     resize="tf-bilinear-legacy")
    got = pre(img)[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(got, _tf_legacy_reference(img, 16))


def test_preprocess_scale_back():
    pre = Preprocess(512, pad="bottom-right", resize="tf-bilinear-legacy")
    assert pre.frame_scale(1280, 1920) == (1920.0, 1920.0)
    x = pre(np.zeros((10, 20, 3), np.uint8))
    assert x.shape == (1, 3, 512, 512) and float(x.min()) == -1.0


def test_old_ssd_checkpoint_schema_is_migrated(tmp_path):
    """Converted detectors of earlier mbv1 versions kept the SSDConfig in config["model"];
    they load through the one schema (meta["ssd"]) and compute the same."""
    from mbv1.checkpoint import save_checkpoint
    from mbv1.detection.predictor import load_ssd
    from mbv1.detection.ssd import SSD, SSDConfig, upgrade_checkpoint

    torch.manual_seed(0)
    model = SSD(SSDConfig(num_classes=3, alpha=0.25)).eval()
    old = save_checkpoint(tmp_path / "old.pt", task="detection", model=model,
                          config={"model": model.config.to_dict()}, meta={"labels": ["a", "b", "c"]})
    loaded, meta = load_ssd(old)
    assert meta["ssd"] == model.config.to_dict()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(model(x), loaded(x)):
            torch.testing.assert_close(a, b)
    new = {"meta": {"ssd": model.config.to_dict()}, "config": {"model": {"alpha": 0.25}}}
    assert upgrade_checkpoint(new) is new  # the current schema passes through untouched
