"""The shared face model (model.heads=shared): the real face detector's body once per frame,
the face heads on RoI-align features of its boxes. RoI features against torchvision's
roi_align by hand, one forward for boxes + attributes + embedding, training on cached RoI
features, a weights-only checkpoint, and `mbv1 faces --weights` / `mbv1 verify --weights`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mbv1.engine import load_config, train
from mbv1.errors import MBV1Error
from mbv1.tasks.faces import FacesTask
from tests.conftest import require_asset, synthetic_face_cache
from tests.test_cli import mbv1

pytestmark = pytest.mark.assets

FAST = ["model.heads=shared", "train.workers=0", "train.batch_size=8", "train.epochs=3",
        "train.warmup_epochs=0", "train.lr=0.01", "run.tensorboard=false",
        "data.holdout=[dot, cid]"]


@pytest.fixture(scope="module")
def face_model():
    require_asset("face-api")
    from mbv1.detection.preprocess import Preprocess
    from mbv1.faces.model import HeadsConfig
    from mbv1.faces.shared import SharedConfig, SharedFaceModel, load_detector

    det, meta, path = load_detector("face-ssd")
    heads = HeadsConfig(["gender", "expression", "age", "embedding"], 128, 512)
    # conv11 + conv12-13 (the TF OD API's Faster R-CNN layout); the default conv5 tap below
    config = SharedConfig(tap="conv11", train_layers=2, detector=path)
    return SharedFaceModel(heads, det, config).eval(), Preprocess.from_meta(meta)


@pytest.fixture(scope="module")
def photo():
    from mbv1.datasets.images import load_rgb

    return np.asarray(load_rgb(_t1()))


def _t1():
    """insightface's t1.jpg: six people in a row (a real group photo)."""
    return next(require_asset("insightface").glob("**/images/t1.jpg"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("shared")
    cache = synthetic_face_cache(root)
    cfg = load_config(FacesTask, None, FAST, {"data.path": str(cache.root),
                                              "run.project": str(root / "runs")})
    return cache, train(FacesTask, cfg)


def test_roi_features_are_roi_align_of_the_detector_body(face_model, photo):
    from torchvision.ops import roi_align

    model, pre = face_model
    x = pre(photo)
    with torch.no_grad():
        out = model(x)
        assert len(out["boxes"]) == 6  # the six faces of t1.jpg
        fmap = model.detector.backbone.features(x, ["conv11"])["conv11"]
        assert fmap.shape[-1] == 512 // 16
        boxes = out["boxes"]
        mine = model.rois(fmap, [boxes])
        ref = roi_align(fmap, [boxes], output_size=14, spatial_scale=1 / 16, sampling_ratio=2,
                        aligned=False)
        assert mine.shape == (6, 512, 14, 14)
        assert torch.allclose(mine, ref, atol=1e-4, rtol=1e-4)
        # one bin by hand: the mean of its 2x2 bilinear samples of the map
        b = boxes[0] / 16
        bw, bh = (b[2] - b[0]) / 14, (b[3] - b[1]) / 14
        ys = b[1] + bh * torch.tensor([0.25, 0.75])
        xs = b[0] + bw * torch.tensor([0.25, 0.75])
        vals = [_bilinear(fmap[0, 7], float(y), float(xx)) for y in ys for xx in xs]
        assert float(mine[0, 7, 0, 0]) == pytest.approx(float(sum(vals) / 4), abs=1e-4)
        # the heads of the one forward are the heads of those features
        heads = model.head(mine)
        for k in ("gender", "expression", "age", "embedding"):
            assert torch.allclose(out[k], heads[k], atol=1e-5), k


def _bilinear(m: torch.Tensor, y: float, x: float) -> torch.Tensor:
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    fy, fx = y - y0, x - x0
    return ((1 - fy) * (1 - fx) * m[y0, x0] + (1 - fy) * fx * m[y0, x0 + 1]
            + fy * (1 - fx) * m[y0 + 1, x0] + fy * fx * m[y0 + 1, x0 + 1])


def test_one_forward_serves_boxes_attributes_and_embedding_in_train_and_eval(face_model, photo):
    model, pre = face_model
    x = pre(photo)
    before = {k: v.clone() for k, v in model.detector.state_dict().items()}
    keys = set()
    for mode in (True, False):
        model.train(mode)
        assert not model.detector.training  # frozen: BN statistics never move
        with torch.no_grad():
            out = model(x)
        k = len(out["boxes"])
        assert out["gender"].shape == (k, 2) and out["expression"].shape == (k, 7)
        assert out["age"].shape == (k,) and out["embedding"].shape == (k, 128)
        assert torch.allclose(out["embedding"].norm(dim=1), torch.ones(k), atol=1e-5)
        assert (out["batch_index"] == 0).all() and (out["scores"] > 0.5).all()
        keys.add(frozenset(out))
    model.eval()
    assert len(keys) == 1  # the same return type in train and eval
    assert all(torch.equal(v, model.detector.state_dict()[k]) for k, v in before.items())
    # given boxes (training, or boxes from elsewhere): scores 1, the heads at those boxes
    with torch.no_grad():
        given = model(x, boxes=[out["boxes"][:2]])
    assert torch.allclose(given["age"], out["age"][:2], atol=1e-4)
    assert torch.equal(given["scores"], torch.ones(2))
    with pytest.raises(MBV1Error, match="RGB frames"):
        model(torch.zeros(1, 512, 14, 14))
    frame, face = model.costs(512)
    assert 3.0e9 < frame < 3.3e9 and 70e6 < face < 85e6  # a face is ~2.5% of a frame


def test_an_earlier_body_layer_as_the_tap(face_model, photo):
    """shared.tap=conv5 (the default; stride 8, not a detector map): the same one body pass
    gives the detector's boxes and the conv5 map; the RoI head is the copies of conv6-13."""
    from mbv1.detection.roi_crop import roi_crop
    from mbv1.faces.shared import SharedConfig, SharedFaceModel

    ref, pre = face_model
    assert (SharedConfig().tap, SharedConfig().train_layers) == ("conv5", 8)
    model = SharedFaceModel(ref.heads_config, ref.detector, SharedConfig()).eval()
    assert (model.stride, model.roi_channels, len(model.roi_head), model.fixed) == (8, 256, 8, [])
    x = pre(photo)
    with torch.no_grad():
        out, base = model(x), ref(x)
        assert torch.equal(out["boxes"], base["boxes"]) and len(out["boxes"]) == 6
        fmap = model.tap_map(x)
        assert fmap.shape[1:] == (256, 64, 64)
        rois = model.rois(fmap, [out["boxes"]])  # torchvision's roi_align on this finer map
        assert torch.allclose(rois, roi_crop(fmap, [out["boxes"]], 14, 1 / 8, 2), atol=1e-4)
        heads = model.head(rois)
        assert torch.allclose(out["age"], heads["age"], atol=1e-5)
        # shared.roi_margin: the same RoI-align of boxes grown about their centres
        wide = SharedFaceModel(ref.heads_config, ref.detector, SharedConfig(roi_margin=0.5))
        b = out["boxes"][:1]
        grown = torch.cat([b[:, :2] - (b[:, 2:] - b[:, :2]) / 4, b[:, 2:] + (b[:, 2:] - b[:, :2]) / 4], 1)
        assert torch.allclose(wide.rois(fmap, [b]), model.rois(fmap, [grown]), atol=1e-6)
    _, face = model.costs(512)
    assert 90e6 < face < 110e6  # conv6-13 on 14x14 RoIs at stride 8
    with pytest.raises(MBV1Error, match="train_sizes"):
        SharedFaceModel(ref.heads_config, ref.detector, SharedConfig(train_sizes=[0]))
    with pytest.raises(MBV1Error, match="before the last"):
        SharedFaceModel(ref.heads_config, ref.detector, SharedConfig(tap="conv13"))


def test_shared_model_trains_on_cached_roi_features_and_serves(trained, photo):
    from mbv1.faces.shared_infer import SharedFaces
    from mbv1.faces.student import FaceModel, open_face_model

    cache, result = trained
    m = result.metrics
    for k in ("mean_ap", "gender_acc", "gender_acc_const", "expression_top1", "age_mae",
              "cosine", "cosine_const", "verif_auc"):
        assert k in m, k
    assert m["split"] == "held-out sources cid, dot" and m["faces"] == 10
    feats = list(cache.root.glob("rois-*.npy"))
    arr = np.load(feats[0], mmap_mode="r")
    # the frame as it is and mirrored, then shrunk to ~64 and ~32 px faces (each mirrored too),
    # then those six views twice more at jittered boxes
    assert len(feats) == 1 and arr.shape == (20, 18, 256, 14, 14)
    assert not np.array_equal(arr[0, 0], arr[0, 6]) and not np.array_equal(arr[0, 6], arr[0, 12])
    assert not np.array_equal(arr[0, 0], arr[0, 2]) and not np.array_equal(arr[0, 2], arr[0, 4])
    best = result.run_dir / "best.pt"
    ck = torch.load(best, weights_only=True)  # plain tensors and values only
    meta = ck["meta"]
    assert meta["shared"]["tap"] == "conv5" and meta["preprocess"]["input_size"] == 512
    assert meta["resolution"] == 512 and "detector.backbone.conv0.conv.weight" in ck["model"]
    assert "roi_head.0.depthwise.conv.weight" in ck["model"]
    # the detector is the pulled face model, untouched by training
    from mbv1.detection.predictor import load_ssd
    from mbv1.faces.pipeline import _default_ssd

    ssd, _ = load_ssd(_default_ssd())
    for k, v in ssd.state_dict().items():
        assert torch.equal(ck["model"][f"detector.{k}"], v), k
    # inference: the same numbers eager and on the exported runtime
    fast = open_face_model(best)
    eager = open_face_model(best, backend="eager")
    assert isinstance(fast, SharedFaces) and fast.backend != "eager"
    b1, s1, o1 = fast(photo)
    b2, s2, o2 = eager(photo)
    assert len(b1) == len(b2) == 6
    np.testing.assert_allclose(b1, b2, atol=0.5)
    np.testing.assert_allclose(s1, s2, atol=1e-3)
    for k in o2:
        np.testing.assert_allclose(o1[k], o2[k], atol=2e-3)
    with pytest.raises(MBV1Error, match="shared face model"):
        FaceModel(best)


def test_faces_and_verify_cli_run_the_shared_model(trained, tmp_path):
    _, result = trained
    best = result.run_dir / "best.pt"
    photo = _t1()
    r = mbv1("faces", photo, "--weights", best, "--project", tmp_path, "--name", "p",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "shared face model" in r.stdout and "6 faces" in r.stdout
    lines = [json.loads(x) for x in (tmp_path / "p" / "predictions.jsonl").read_text().splitlines()]
    faces = lines[0]["faces"]
    assert len(faces) == 6
    for f in faces:
        assert {"box_xyxy", "score", "age", "gender", "expression", "embedding"} <= set(f)
        assert f["crop"] == "roi" and len(f["embedding"]) == 512
    r = mbv1("verify", photo, photo, "--weights", best, "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)
    assert v["distance"] == pytest.approx(0.0, abs=1e-4) and v["same"]
    assert v["embedding_source"] == "student"  # the shared model's own embedding head


def test_shrunk_views_put_the_face_at_its_size_in_the_detector_input():
    """The cached training views of a face shrunk to a smaller size: the box lands on the
    same (smaller) face, the canvas keeps the frame's size, and a face already no larger than
    the view's size keeps its own view."""
    import cv2

    from mbv1.detection.preprocess import Preprocess
    from mbv1.faces.cache import FaceRecord
    from mbv1.faces.roi_features import _view, shrunk, views

    assert views([64, 32]) == [(0, None), (1, None), (0, 64), (1, 64), (0, 32), (1, 32)]
    rng = np.random.default_rng(0)
    rgb = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (9, 9), 3)
    box = [100.0, 60.0, 180.0, 160.0]
    canvas, b = shrunk(rgb, box, 0.25)
    assert canvas.shape == rgb.shape
    assert b[2] - b[0] == pytest.approx(20, abs=0.2) and b[3] - b[1] == pytest.approx(25, abs=0.2)
    assert (b[0] + b[2]) / 2 == pytest.approx(140, abs=1) and (b[1] + b[3]) / 2 == pytest.approx(110, abs=1)
    face = cv2.resize(rgb[60:160, 100:180], (20, 25), interpolation=cv2.INTER_AREA)
    x0, y0 = round(b[0]), round(b[1])
    got = canvas[y0:y0 + 25, x0:x0 + 20].astype(float)
    assert np.abs(got - face).mean() < 4  # the same face, a quarter of the size
    pre = Preprocess(input_size=512, pad="bottom-right")
    rec = lambda i, bx: FaceRecord(f"f{i}", "s", "x.png", 0, None, i, bx, 1.0, None, "ssd",  # noqa: E731
                                   None, None, "s")
    big, small = rec(0, box), rec(1, [10.0, 10.0, 20.0, 22.0])  # 160 and 19 px in the input
    got = list(_view(rgb, [big, small], 0, 32, pre))
    assert [(f, fr is None) for f, fr, _ in got] == [([0], False), ([1], True)]
    side = float(got[0][2][0, 2] - got[0][2][0, 0]), float(got[0][2][0, 3] - got[0][2][0, 1])
    assert 32 / 2 ** 0.5 - 1 < max(side) < 32 * 2 ** 0.5 + 1
    whole = list(_view(rgb, [big, small], 1, None, pre))  # mirrored, both faces in one pass
    assert len(whole) == 1 and whole[0][0] == [0, 1]
    assert torch.allclose(whole[0][2][0], torch.tensor([140.0, 60, 220, 160]) * 512 / 320)


def test_shared_model_refusals(tmp_path):
    from mbv1.faces.cache import FaceRecord
    from mbv1.faces.roi_features import roi_features

    class _CelebA:
        root = tmp_path
        records = [FaceRecord("000001.jpg", "celeba", "000001.jpg", 0, None, 0, [0, 0, 0, 0],
                              1.0, None, "celeba-aligned", None, None, "celeba")]

    with pytest.raises(MBV1Error, match="CelebA"):
        roi_features(_CelebA(), None, None)
    cache = synthetic_face_cache(tmp_path / "c")
    cfg = load_config(FacesTask, None, [*FAST, "data.degrade=0.5"],
                      {"data.path": str(cache.root), "run.project": str(tmp_path / "runs")})
    with pytest.raises(MBV1Error, match="degrade"):
        FacesTask(cfg).build_datasets()


def test_jittered_boxes_move_and_resize_within_the_amount_the_same_every_time():
    from mbv1.faces.roi_features import jittered

    boxes = torch.tensor([[100.0, 60.0, 180.0, 160.0], [10.0, 10.0, 20.0, 22.0]])
    a = jittered(boxes, ["f0", "f1"], 2, 1, 0.1)
    assert torch.equal(a, jittered(boxes, ["f0", "f1"], 2, 1, 0.1))  # cached views: reproducible
    assert not torch.equal(a, jittered(boxes, ["f0", "f1"], 2, 2, 0.1))  # another copy
    assert torch.equal(jittered(boxes, ["f0", "f1"], 2, 1, 0.0), boxes)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    aw, ah = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    assert torch.allclose(aw / w, ah / h)  # one size factor: the aspect stays
    assert ((aw / w - 1).abs() <= 0.1 + 1e-6).all() and not torch.allclose(aw, w)
    shift = (a[:, :2] + a[:, 2:]) / 2 - (boxes[:, :2] + boxes[:, 2:]) / 2
    assert (shift[:, 0].abs() <= 0.1 * w + 1e-4).all() and (shift[:, 1].abs() <= 0.1 * h + 1e-4).all()


def test_jitter_copies_add_rounds_of_views_cut_at_jittered_boxes(face_model, tmp_path):
    """shared.jitter_copies=1: the cache holds the views, then the same views again cut from
    the same maps at jittered boxes; round 0 is the plain cache's."""
    from mbv1.faces.roi_features import jittered, roi_features
    from mbv1.faces.shared import SharedConfig, SharedFaceModel

    ref, pre = face_model
    cache = synthetic_face_cache(tmp_path / "c")
    plain = SharedFaceModel(ref.heads_config, ref.detector,
                            SharedConfig(tap="conv11", train_layers=2, train_sizes=[],
                                         jitter_copies=0))
    jit = SharedFaceModel(ref.heads_config, ref.detector,
                          SharedConfig(tap="conv11", train_layers=2, train_sizes=[], jitter_copies=1))
    a, b = roi_features(cache, plain, pre), roi_features(cache, jit, pre)
    assert a.shape == (20, 2, 512, 14, 14) and b.shape == (20, 4, 512, 14, 14)
    np.testing.assert_allclose(np.asarray(b[:, :2], np.float32), np.asarray(a, np.float32), atol=1e-2)
    assert len(list(cache.root.glob("rois-*.npy"))) == 2  # two keys, two files
    from mbv1.datasets.images import load_rgb

    r = cache.records[0]
    rgb = np.asarray(load_rgb(r.file))
    sx, sy = pre.frame_scale(*rgb.shape[:2])
    box = torch.tensor([r.box_xyxy]) * torch.tensor([1 / sx, 1 / sy, 1 / sx, 1 / sy]) * pre.input_size
    x = pre(rgb)
    with torch.no_grad():
        want = jit.rois(jit.tap_map(x), [jittered(box, [r.id], 0, 1, 0.1)])
    np.testing.assert_allclose(np.asarray(b[0, 2], np.float32), want[0].numpy(), atol=2e-2, rtol=2e-2)
    with pytest.raises(MBV1Error, match="jitter"):
        SharedFaceModel(ref.heads_config, ref.detector,
                        SharedConfig(tap="conv11", train_layers=2, box_jitter=0.7))
