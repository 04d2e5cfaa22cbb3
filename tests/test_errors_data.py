"""Bad and unusual data, tried as a new user would (issue 23): every bad case is one line with
a non-zero exit and no run folder left behind; valid-but-unusual data trains.

Tiny real data: the real digits (30 train / 10 val, 16 px) and a synthetic COCO set (8 train /
4 val, 64 px); α=0.25, one epoch, the CLI run in this process (``mbv1_cli``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from mbv1.datasets.digits import write_digits
from mbv1.datasets.synthetic_coco import make_synthetic_coco
from mbv1.errors import MBV1Error

COMMON = ["--set", "run.tensorboard=false", "--set", "train.workers=0", "--set",
          "train.threads=1", "--set", "model.alpha=0.25", "--epochs", "1"]
CLS = [*COMMON, "--set", "model.resolution=32", "--set", "data.augment=light"]
DET = [*COMMON, "--set", "model.resolution=64"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_digits(root / "digits", size=16, per_class=4)
    make_synthetic_coco(root / "coco", num_train=8, num_val=4, size=64, seed=0)
    return root


def copy(data: Path, name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(data / name, tmp_path / name))


def train(mbv1_cli, tmp_path, task, path, *args):
    project = tmp_path / "runs"
    code, out, err, warns = mbv1_cli("train", task, "--data", path, "--set",
                                     f"run.project={project}", *args)
    runs = sorted(p.name for p in (project / task).iterdir()) if (project / task).is_dir() else []
    return code, out, err, warns, runs


def one_line_error(code, err, *words):
    assert code == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Traceback" not in err, err
    for w in words:
        assert w in last, (w, last)
    return last


# -- batches BatchNorm cannot train on -----------------------------------------------------

def test_detection_batch_of_one_is_refused_with_the_smallest_that_works(data, tmp_path,
                                                                         mbv1_cli):
    code, out, err, _, runs = train(mbv1_cli, tmp_path, "detection", data / "coco",
                                    "--batch-size", "1", *DET)
    one_line_error(code, err, "train.batch_size=1", "BatchNorm", "1x1", "--batch-size 2")
    assert runs == []  # nothing that looks like a run


def test_classification_batch_of_one_at_32px_is_refused(data, tmp_path, mbv1_cli):
    code, _, err, _, runs = train(mbv1_cli, tmp_path, "classification", data / "digits",
                                  "--batch-size", "1", *CLS)
    one_line_error(code, err, "BatchNorm", "32 px", "--batch-size 2")
    assert runs == []


def test_a_skipped_image_leaving_a_batch_of_one_drops_it_and_says_so(data, tmp_path, mbv1_cli):
    coco = copy(data, "coco", tmp_path)
    (coco / "images" / "train" / "00000.jpg").write_bytes(b"not a jpeg")
    code, out, err, warns, runs = train(mbv1_cli, tmp_path, "detection", coco,
                                        "--batch-size", "2", *DET)
    assert code == 0, err
    assert "skipping cannot read image" in err and "00000.jpg" in err
    assert "epoch 1: skipped 1 unreadable of 8 training images" in out
    assert "dropped a batch that skipping left with 1 image" in out
    assert runs == ["exp"] and (tmp_path / "runs/detection/exp/best.pt").is_file()
    assert not [w for w in warns if "lr_scheduler" in w]  # a step without an update is no news


def test_skipped_images_are_counted_once_per_epoch_in_classification(data, tmp_path, mbv1_cli):
    digits = copy(data, "digits", tmp_path)
    sorted((digits / "train" / "0").iterdir())[0].write_bytes(b"x")
    code, out, err, _, _ = train(mbv1_cli, tmp_path, "classification", digits,
                                 "--batch-size", "2", *CLS, "--epochs", "2")
    assert code == 0, err
    assert out.count("skipped 1 unreadable of 30 training images") == 2  # epochs 1 and 2


# -- nothing to learn from -------------------------------------------------------------------

@pytest.mark.parametrize("task", ["classification", "detection"])
def test_every_image_unreadable_is_an_error_not_a_run(data, tmp_path, mbv1_cli, task):
    name = "digits" if task == "classification" else "coco"
    root = copy(data, name, tmp_path)
    for p in (root / "train" if task == "classification" else root / "images/train").rglob("*"):
        if p.is_file():
            p.write_bytes(b"garbage")
    args = CLS if task == "classification" else DET
    code, out, err, _, runs = train(mbv1_cli, tmp_path, task, root, "--batch-size", "2", *args)
    one_line_error(code, err, "trained on no image", "could be read", "data.path=")
    assert runs == [] and "best.pt" not in out


def test_an_unreadable_evaluation_split_is_an_error_and_a_partial_one_is_said(data, tmp_path,
                                                                               mbv1_cli):
    coco = copy(data, "coco", tmp_path)
    val = sorted((coco / "images" / "val").iterdir())
    val[0].write_bytes(b"x")
    code, out, err, _, runs = train(mbv1_cli, tmp_path, "detection", coco, "--batch-size", "2",
                                    *DET)
    assert code == 0, err
    assert "evaluated on 3 of the 4 images of" in out and "skipped 1 unreadable" in out
    for p in val[1:]:
        p.write_bytes(b"x")
    code, out, err, _, runs = train(mbv1_cli, tmp_path, "detection", coco, "--batch-size", "2",
                                    *DET)
    one_line_error(code, err, "evaluation split", "no readable image", "all 4 were skipped")
    assert runs == ["exp"]  # the first run; the failed one left nothing
    code, _, err, _ = mbv1_cli("eval", "detection", tmp_path / "runs/detection/exp", "--data",
                               coco, "--workers", "0")
    one_line_error(code, err, "no readable image")


def test_one_class_and_a_wrapper_folder_are_refused(data, tmp_path, mbv1_cli):
    one = tmp_path / "one"
    shutil.copytree(data / "digits/train/3", one / "3")
    code, _, err, _, runs = train(mbv1_cli, tmp_path, "classification", one, *CLS)
    one_line_error(code, err, "one class ('3')", "at least two classes")
    wrap = tmp_path / "wrap"
    shutil.copytree(data / "digits/train", wrap / "photos")
    code, _, err, _, runs = train(mbv1_cli, tmp_path, "classification", wrap, *CLS)
    one_line_error(code, err, "one class ('photos')", f"pass --data {wrap / 'photos'}")
    assert runs == []


def test_data_path_that_is_a_file(data, tmp_path, mbv1_cli):
    f = tmp_path / "x.jpg"
    f.write_bytes(b"x")
    code, _, err, _, _ = train(mbv1_cli, tmp_path, "classification", f, *CLS)
    one_line_error(code, err, "is a file", "class folders")


# -- malformed annotations -------------------------------------------------------------------

def edit_train_json(coco: Path, change) -> Path:
    j = coco / "annotations" / "instances_train.json"
    d = json.loads(j.read_text())
    change(d)
    j.write_text(json.dumps(d))
    return j


@pytest.mark.parametrize("bbox", [[1, 2, 3], "abc", [1, 2, None, 4], [1, 2, -5, 4],
                                  [1, 2, "3", 4]], ids=["three", "string", "null", "negative",
                                                        "text-number"])
def test_malformed_bbox_names_file_annotation_and_value(data, tmp_path, mbv1_cli, bbox):
    coco = copy(data, "coco", tmp_path)
    j = edit_train_json(coco, lambda d: d["annotations"][0].update(bbox=bbox))
    code, _, err, _, runs = train(mbv1_cli, tmp_path, "detection", coco, "--batch-size", "2",
                                  *DET)
    one_line_error(code, err, str(j), "annotation 1 has bbox", "[x, y, width, height]",
                   "fix or remove")
    assert runs == []


@pytest.mark.parametrize("change,words", [
    (lambda d: d["annotations"][0].update(image_id=999), ["image_id 999", "not in 'images'"]),
    (lambda d: d["annotations"][0].update(category_id=77), ["category_id 77", "'categories'"]),
    (lambda d: d["images"][0].update(width="wide"), ["'width' must be a positive number"]),
    (lambda d: d["images"].append(dict(d["images"][0])), ["listed twice"]),
    (lambda d: d["annotations"][0].pop("bbox"), ["lacks bbox"]),
    (lambda d: d["annotations"][0].update(iscrowd=5), ["'iscrowd' must be 0 or 1"]),
], ids=["orphan", "category", "width", "duplicate-id", "no-bbox", "iscrowd"])
def test_malformed_annotations_are_one_line(data, tmp_path, mbv1_cli, change, words):
    coco = copy(data, "coco", tmp_path)
    j = edit_train_json(coco, change)
    code, _, err, _, runs = train(mbv1_cli, tmp_path, "detection", coco, "--batch-size", "2",
                                  *DET)
    one_line_error(code, err, str(j), *words)
    assert runs == []


def test_coco_warnings_are_plain_lines(data, tmp_path, mbv1_cli):
    coco = copy(data, "coco", tmp_path)
    (coco / "images" / "train" / "00003.jpg").unlink()  # a missing file: skipped
    edit_train_json(coco, lambda d: next(a for a in d["annotations"] if a["image_id"] == 1
                                         ).update(bbox=[1, 1, 0.5, 0.5]))
    code, out, err, warns, _ = train(mbv1_cli, tmp_path, "detection", coco, "--batch-size",
                                     "2", *DET)
    assert code == 0, err
    assert "warning: image file not found" in err and "skipping 1 of 8 images" in err
    assert "warning: " in err and "dropped 1 degenerate boxes" in err
    assert not [w for w in warns if "degenerate" in w or "skipping" in w]  # no UserWarning


# -- valid but unusual data keeps working ----------------------------------------------------

def test_unusual_but_valid_coco_trains(data, tmp_path, mbv1_cli):
    """Non-contiguous category ids, crowd boxes, images without boxes, grayscale and RGBA."""
    coco = copy(data, "coco", tmp_path)
    for split in ("train", "val"):
        j = coco / "annotations" / f"instances_{split}.json"
        d = json.loads(j.read_text())
        new = {c["id"]: c["id"] * 10 + 3 for c in d["categories"]}
        for c in d["categories"]:
            c["id"] = new[c["id"]]
        for a in d["annotations"]:
            a["category_id"] = new[a["category_id"]]
            a.pop("area", None)
        d["annotations"][0]["iscrowd"] = 1
        empty = d["images"][1]["id"]
        d["annotations"] = [a for a in d["annotations"] if a["image_id"] != empty]
        j.write_text(json.dumps(d))
    for i, p in enumerate(sorted((coco / "images").rglob("*.jpg"))):
        img = Image.open(p)
        (img.convert("L") if i % 2 else img.convert("RGBA")).save(p, format="PNG")
    code, out, err, _, runs = train(mbv1_cli, tmp_path, "detection", coco, "--batch-size", "2",
                                    *DET)
    assert code == 0, err
    assert runs == ["exp"] and "best AP" in out


def test_grayscale_and_rgba_classification_trains(data, tmp_path, mbv1_cli):
    digits = copy(data, "digits", tmp_path)
    for i, p in enumerate(sorted(digits.rglob("*.png"))):
        img = Image.open(p)
        (img.convert("L") if i % 2 else img.convert("RGBA")).save(p)
    code, out, err, _, _ = train(mbv1_cli, tmp_path, "classification", digits, "--batch-size",
                                 "4", *CLS)
    assert code == 0, err
    assert "top1" in out


# -- faces and checkpoints -------------------------------------------------------------------

class _NoFaces:
    def describe(self):
        return {"detector": "none", "policy": "box", "size": 32, "margin": 0}

    def __call__(self, rgb):
        return []


def test_photos_without_faces_blame_the_photos_not_the_split(data, tmp_path):
    from types import SimpleNamespace

    from mbv1.faces.prepare import extract

    settings = SimpleNamespace(vid_stride=1, max_frames=0, detector="ssd")
    with pytest.raises(MBV1Error, match="found no face in the 3 photos") as e:
        extract(str(data / "digits/train/1"), str(tmp_path / "cache"), settings, _NoFaces(),
                lambda line: None)
    assert "held-out" not in str(e.value) and "data.detector=mtcnn" in str(e.value)


def test_hostile_pickles_and_random_bytes_are_refused_whole(tmp_path, mbv1_cli):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"format": "mbv1", "model": Evil()}, tmp_path / "evil.pt")
    import pickle

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Evil(), protocol=4))
    (tmp_path / "noise.pt").write_bytes(os.urandom(3000))
    code, _, err, warns = mbv1_cli("info", tmp_path / "evil.pt")
    last = one_line_error(code, err, "evil.pt", "Python code (posix.system)", "would run")
    code, _, err, _ = mbv1_cli("info", tmp_path / "evil.pkl")
    one_line_error(code, err, "evil.pkl", "posix.system", "never loads it")
    code, _, err, warns = mbv1_cli("eval", "classification", tmp_path / "noise.pt")
    last = one_line_error(code, err, "noise.pt", "not a PyTorch checkpoint")
    assert "weights_only" not in last and "PyTorch 2.6" not in last and not warns
    assert not marker.exists()  # the payload never ran


def test_a_real_process_prints_one_line_and_no_traceback(data, tmp_path):
    r = subprocess.run([sys.executable, "-m", "mbv1", "train", "detection", "--data",
                        str(data / "coco"), "--batch-size", "1", "--set",
                        f"run.project={tmp_path}", *DET], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: train.batch_size=1")
