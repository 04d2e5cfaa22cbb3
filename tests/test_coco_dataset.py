"""COCO-format dataset: label map, negatives, crowd and degenerate boxes, robust loading,
one-line errors; and the synthetic generator's files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mbv1.datasets.coco import CocoDetection, collate, load_coco
from mbv1.datasets.synthetic_coco import CATEGORIES, make_synthetic_coco
from mbv1.detection.augment import eval_transform
from mbv1.errors import MBV1Error


def write_set(tmp_path, images, anns, cats=None, files=True):
    img_dir = tmp_path / "images"
    img_dir.mkdir(exist_ok=True)
    if files:
        for im in images:
            Image.new("RGB", (im["width"], im["height"]), (120, 30, 200)).save(img_dir / im["file_name"])
    cats = cats or [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}]
    path = tmp_path / "instances_val.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path, img_dir


def ann(i, image_id, cat, bbox, crowd=0):
    return {"id": i, "image_id": image_id, "category_id": cat, "bbox": bbox,
            "area": bbox[2] * bbox[3], "iscrowd": crowd}


@pytest.fixture
def small_set(tmp_path):
    images = [{"id": 10, "file_name": "a.png", "width": 40, "height": 20},
              {"id": 11, "file_name": "b.png", "width": 30, "height": 30}]
    anns = [ann(1, 10, 7, [4, 2, 20, 10]), ann(2, 10, 3, [0, 0, 40, 20], crowd=1),
            ann(3, 10, 3, [30, 5, 0.5, 10]),  # 0.5 px wide: degenerate
            ann(4, 10, 7, [50, 5, 10, 10]),  # outside the image
            ann(5, 10, 3, [35, 15, 20, 20])]  # clipped to [35, 15, 40, 20]
    return write_set(tmp_path, images, anns)


def test_labels_negatives_crowd_and_degenerate(small_set, capfd):
    path, img_dir = small_set
    ds = CocoDetection(path, img_dir)
    err = capfd.readouterr().err  # one plain line, not a Python warning with its source
    assert err.startswith("warning: ") and "dropped 2 degenerate boxes" in err
    assert err.count("\n") == 1
    assert ds.category_ids == [3, 7] and ds.class_names == ["dog", "cat"]
    assert ds.label_meta() == {"labels": ["dog", "cat"], "category_ids": [3, 7]}
    assert len(ds) == 2 and ds.num_dropped == 2
    s = ds[0]
    assert s["image_id"] == 10 and s["orig_size"] == (20, 40)
    assert s["image"].shape == (3, 20, 40) and s["image"].dtype == torch.float32
    assert s["labels"].tolist() == [2, 1]
    assert torch.allclose(s["boxes"], torch.tensor([[4 / 40, 2 / 20, 24 / 40, 12 / 20],
                                                    [35 / 40, 15 / 20, 1.0, 1.0]]))
    # image 11 has no boxes: kept as a negative
    assert ds[1]["boxes"].shape == (0, 4) and ds[1]["labels"].shape == (0,)
    # normalisation with the given mean/std: (120/255 - 0.5)/0.5 in the red channel
    assert s["image"][0, 0, 0].item() == pytest.approx(120 / 255 * 2 - 1, abs=1e-6)


def test_collate_with_resize(small_set):
    path, img_dir = small_set
    ds = CocoDetection(path, img_dir, transform=eval_transform(16), mean=(0, 0, 0),
                       std=(1, 1, 1))
    b = collate([ds[0], None, ds[1]])
    assert b["image"].shape == (2, 3, 16, 16)
    assert b["image_id"].tolist() == [10, 11] and b["orig_size"].tolist() == [[20, 40], [30, 30]]
    assert [x.shape[0] for x in b["boxes"]] == [2, 0] and b["labels"][0].dtype == torch.int64
    # a plain resize keeps normalised boxes
    assert torch.allclose(b["boxes"][0][0], torch.tensor([0.1, 0.1, 0.6, 0.6]))
    assert collate([None]) is None
    raw = CocoDetection(path, img_dir)
    with pytest.raises(MBV1Error, match="different sizes"):
        collate([raw[0], raw[1]])


def test_image_modes_and_exif(tmp_path):
    images = [{"id": 1, "file_name": "grey.png", "width": 8, "height": 6},
              {"id": 2, "file_name": "rgba.png", "width": 8, "height": 6},
              {"id": 3, "file_name": "rot.jpg", "width": 6, "height": 8}]
    path, img_dir = write_set(tmp_path, images, [], files=False)
    Image.new("L", (8, 6), 77).save(img_dir / "grey.png")
    Image.new("RGBA", (8, 6), (10, 20, 30, 255)).save(img_dir / "rgba.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90°: stored 8x6 landscape, shown 6x8 portrait
    Image.new("RGB", (8, 6), (0, 200, 0)).save(img_dir / "rot.jpg", exif=exif)
    ds = CocoDetection(path, img_dir, mean=(0, 0, 0), std=(1, 1, 1))
    assert ds[0]["image"].shape == (3, 6, 8)
    assert torch.allclose(ds[0]["image"][:, 0, 0], torch.full((3,), 77 / 255))
    assert ds[1]["image"].shape == (3, 6, 8)
    assert ds[2]["image"].shape == (3, 8, 6) and ds[2]["orig_size"] == (8, 6)


def test_errors_are_one_line_and_name_the_path(tmp_path, capfd):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(MBV1Error, match="bad.json is not valid JSON") as e:
        load_coco(bad)
    assert "\n" not in str(e.value)
    with pytest.raises(MBV1Error, match="annotation file not found"):
        load_coco(tmp_path / "nope.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(MBV1Error, match="not a COCO instances file"):
        load_coco(tmp_path / "list.json")
    images = [{"id": 1, "file_name": "gone.jpg", "width": 8, "height": 8},
              {"id": 2, "file_name": "here.jpg", "width": 8, "height": 8}]
    path, img_dir = write_set(tmp_path, images, [], files=False)
    Image.new("RGB", (8, 8)).save(img_dir / "here.jpg")
    with pytest.raises(MBV1Error, match=r"image file not found: .*gone\.jpg") as e:
        CocoDetection(path, img_dir)
    assert "\n" not in str(e.value)
    assert len(CocoDetection(path, img_dir, on_bad_image="skip")) == 1
    assert "warning: image file not found" in capfd.readouterr().err
    (img_dir / "here.jpg").write_bytes(b"not a jpeg")
    (img_dir / "gone.jpg").write_bytes(b"")
    ds = CocoDetection(path, img_dir, on_bad_image="skip")
    assert ds[0] is None  # reported on stderr, dropped by collate
    with pytest.raises(MBV1Error, match=r"cannot read image .*here\.jpg"):
        CocoDetection(path, img_dir)[1]
    with pytest.raises(MBV1Error, match="image folder not found"):
        CocoDetection(path, tmp_path / "nowhere")
    anns = [ann(1, 2, 99, [0, 0, 4, 4])]
    path, img_dir = write_set(tmp_path, images[1:], anns)
    with pytest.raises(MBV1Error, match="category 99"):
        CocoDetection(path, img_dir)


def test_val_set_follows_train_label_map(small_set):
    path, img_dir = small_set
    ds = CocoDetection(path, img_dir, category_ids=[7, 3])
    assert ds.class_names == ["cat", "dog"] and ds[0]["labels"].tolist() == [1, 2]


def test_synthetic_set_is_real_coco_and_deterministic(tmp_path):
    a = make_synthetic_coco(tmp_path / "a", num_train=12, num_val=5, size=64, seed=3)
    b = make_synthetic_coco(tmp_path / "b", num_train=12, num_val=5, size=64, seed=3)
    assert a.train_json.read_bytes() == b.train_json.read_bytes()
    assert (a.train_images / "00007.jpg").read_bytes() == (b.train_images / "00007.jpg").read_bytes()
    data = json.loads(a.train_json.read_text())
    assert [c["name"] for c in data["categories"]] == list(CATEGORIES)
    assert len(data["images"]) == 12 and data["annotations"]
    for an in data["annotations"]:
        x, y, w, h = an["bbox"]
        assert 0 <= x and 0 <= y and x + w <= 64 and y + h <= 64 and w > 1 and h > 1
        assert an["iscrowd"] == 0 and 0 < an["area"] <= w * h + 1e-6
    counts = np.bincount([an["image_id"] for an in data["annotations"]], minlength=13)[1:]
    assert counts.max() <= 4
    with Image.open(a.val_images / "00000.jpg") as im:
        assert im.format == "JPEG" and im.size == (64, 64)
    ids = {an["id"] for an in data["annotations"]}
    val = json.loads(a.val_json.read_text())
    assert not ids & {an["id"] for an in val["annotations"]}
    ds = CocoDetection(a.val_json, a.val_images)
    assert len(ds) == 5 and ds.num_classes == 4
