"""The converted COCO detector (SSDLite-MobileNetV2, TF.js coco-ssd) against the package's own
graph run by its own JavaScript (tools/coco_ssd_reference: @tensorflow-models/coco-ssd 2.2.3 on
tfjs 4.22.0's CPU backend) on real photos and street-video frames."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = json.loads((FIXTURES / "coco_ssd_reference.json").read_text())
BOX_PX, SCORE = 1.0, 1e-3  # the tolerances: box ≤ 1 px, score ≤ 1e-3


@pytest.fixture(scope="module")
def detector():
    from tests.conftest import require_asset

    require_asset("coco-ssd")
    from mbv1.detection.coco_model import default_checkpoint
    from mbv1.detection.postprocess import PostprocessConfig
    from mbv1.detection.predictor import Detector

    opts = REFERENCE["options"]
    # coco-ssd: one class per anchor, class-agnostic NMS at IoU = minScore, ≤ maxNumBoxes
    post = PostprocessConfig(conf=opts["minScore"], iou=opts["minScore"],
                             max_det=opts["maxNumBoxes"], agnostic=True)
    return Detector(default_checkpoint(), backend="eager", post=post)


def _pixels(image: dict) -> np.ndarray:
    from tests.conftest import require_asset

    root, _, name = image["root"].partition(":")
    path = FIXTURES / image["file"] if root == "fixtures" else require_asset(name) / image["file"]
    rgb = np.asarray(Image.open(path).convert("RGB"))
    digest = hashlib.sha256(np.ascontiguousarray(rgb).tobytes()).hexdigest()
    assert digest == image["decoded_rgb_sha256"], f"{path}: other pixels than the reference's"
    return rgb


def _clip_xywh(bbox, w, h) -> np.ndarray:
    x, y, bw, bh = bbox
    return np.array([max(x, 0), max(y, 0), min(x + bw, w), min(y + bh, h)])


@pytest.mark.parametrize("image", REFERENCE["images"], ids=lambda im: Path(im["file"]).stem)
def test_same_detections_as_tfjs(detector, image):
    rgb = _pixels(image)
    h, w = rgb.shape[:2]
    x = detector.prepare(rgb)
    with torch.inference_mode():
        codes, logits = detector.model(x)
        scores = detector.model.scores(logits)[0]
        from mbv1.detection.box_coder import decode

        boxes = decode(codes, detector.anchors)[0]  # [A, 4] normalised xyxy
    # Raw outputs of the 20 strongest anchors: best class, its score and the decoded box.
    for ref in image["top_anchors"]:
        a = ref["anchor_index"]
        assert int(scores[a].argmax()) + 1 == ref["class_id"], ref
        assert float(scores[a].max()) == pytest.approx(ref["score"], abs=SCORE), ref
        x0, y0, x1, y1 = boxes[a].tolist()
        ymin, xmin, ymax, xmax = ref["box_yxyx"]
        got = np.array([x0 * w, y0 * h, x1 * w, y1 * h])
        assert np.abs(got - [xmin * w, ymin * h, xmax * w, ymax * h]).max() <= BOX_PX, ref
    # End to end: the same boxes, names, COCO ids and scores.
    det = detector(rgb)
    ref_dets = image["detections"]
    threshold = REFERENCE["options"]["minScore"]
    unmatched = list(range(len(det)))
    for ref in ref_dets:
        want = _clip_xywh(ref["bbox"], w, h)
        hit = [i for i in unmatched if det.category_ids[i] == ref["class_id"]
               and np.abs(det.boxes_xyxy[i] - want).max() <= BOX_PX]
        if not hit and ref["score"] < threshold + SCORE:
            continue  # on the threshold: either side of it is within the tolerance
        assert hit, f"{ref['class']} {ref['score']:.3f} at {want.round(1)} not found"
        i = hit[0]
        assert det.scores[i] == pytest.approx(ref["score"], abs=SCORE)
        assert det.names[i] == ref["class"]
        unmatched.remove(i)
    extra = [(det.names[i], float(det.scores[i])) for i in unmatched
             if det.scores[i] >= threshold + SCORE]
    assert not extra, f"mbv1 finds more than coco-ssd: {extra}"


def test_anchors_equal_the_stored_constant():
    from mbv1.detection.coco_model import coco_config, stored_anchors
    from mbv1.detection.ssd import SSD
    from mbv1.tfjs import load_tfjs_weights
    from tests.conftest import require_asset

    arrays = load_tfjs_weights(require_asset("coco-ssd") / "package/models/coco-ssd/model.json")
    model = SSD(coco_config())
    generated = model.anchors_for(300, 300)
    assert generated.shape == (1917, 4)
    torch.testing.assert_close(generated, stored_anchors(arrays), rtol=0, atol=1e-4)


def test_checkpoint_meta_names_coco_ids_and_preprocessing():
    from mbv1.checkpoint import load_checkpoint
    from mbv1.detection.coco_model import COCO90, UNANNOTATED_IDS, default_checkpoint

    meta = load_checkpoint(default_checkpoint())["meta"]
    assert meta["labels"][0] == "person" and meta["labels"][89] == "toothbrush"
    assert meta["category_ids"] == list(range(1, 91)) and len(COCO90) == 90
    assert meta["labels"][2] == "car" and 12 in UNANNOTATED_IDS
    assert meta["preprocess"] == {"input_size": 300, "mean": [0.5] * 3, "std": [0.5] * 3,
                                  "pad": "none", "resize": "tf-bilinear-legacy"}
    assert meta["ssd"]["backbone"] == "mobilenet_v2" and meta["ssd"]["head"] == "ssdlite"


def test_eval_of_the_pretrained_model_on_a_val_only_coco_folder(tmp_path):
    """``mbv1 eval detection`` on COCO-format data with only a val split: the boxes the
    package's own JavaScript found at ≥ 0.5 on the three street frames as ground truth."""
    from tests.conftest import require_asset
    from tests.test_cli import mbv1

    require_asset("coco-ssd")
    from mbv1.detection.coco_model import default_checkpoint

    (tmp_path / "annotations").mkdir()
    (tmp_path / "images/val").mkdir(parents=True)
    images, anns = [], []
    for i, im in enumerate(i for i in REFERENCE["images"] if i["root"] == "fixtures"):
        name = f"{1000 + i:012d}.png"
        Image.open(FIXTURES / im["file"]).save(tmp_path / "images/val" / name)
        images.append({"id": 1000 + i, "file_name": name, "width": im["width"],
                       "height": im["height"]})
        anns += [{"image_id": 1000 + i, "category_id": d["class_id"], "bbox": d["bbox"],
                  "area": d["bbox"][2] * d["bbox"][3], "iscrowd": 0}
                 for d in im["detections"] if d["score"] >= 0.5]
    for k, a in enumerate(anns):
        a["id"] = k + 1
    cats = sorted({a["category_id"] for a in anns})
    (tmp_path / "annotations/instances_val.json").write_text(json.dumps({
        "images": images, "annotations": anns,
        "categories": [{"id": c, "name": str(c)} for c in cats]}))
    r = mbv1("eval", "detection", default_checkpoint(), "--data", tmp_path, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert "mbv1 SSDLite-MobileNetV2 on val of" in out and "AP50 100.0" in out, out
    assert "MobileNetV2 Table 6 MNet V2 + SSDLite: mAP 22.1" in out
