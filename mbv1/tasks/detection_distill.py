"""Detector distillation inside the detection task (``distill.teacher``): its settings, its
recipe, and the teacher's boxes prepared once per run (:mod:`mbv1.detection.distill_data`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass
class DistillSection:
    """``distill`` section: learn from a teacher detector's boxes on unlabelled photos and
    videos (``--data`` or the embedded default) instead of annotations
    (:mod:`mbv1.detection.distill_data`)."""

    teacher: str | None = None  # coco-ssdlite, face-ssd, or an mbv1 detection checkpoint
    classes: tuple[str, ...] = ()  # the student's classes by the teacher's names; empty: found
    min_boxes: int = 20  # a class is found with this many teacher boxes in the training frames
    conf: float = 0.5  # teacher boxes at or above it are targets (and evaluation ground truth)
    keep_conf: float = 0.3  # teacher boxes cached down to this score
    # the teacher's class scores in the matched anchors' targets (0: hard targets only; 0.5
    # measured no better at α=0.5: docs/detection.md)
    soft_weight: float = 0.0
    vid_stride: int = 5  # every N-th video frame (the default data's own strides)
    dedup: float = 2.0  # near-duplicate frames skipped (mean |Δ| of grey thumbnails, 0-255)
    max_frames: int = 400  # kept frames per source (0: all)
    train_frames: int = 0  # train on this many of the training frames, spread evenly (0: all)
    frame_size: int = 640  # long side of the cached frames
    cache: str | None = None  # default: <mbv1 cache>/distill/<teacher>-<settings hash>



def log(msg: str) -> None:
    # data preparation and recipe notes: stderr, so that `mbv1 eval --json` prints only JSON
    print(msg, file=sys.stderr, flush=True)


def distill_recipe(cfg) -> list[tuple[str, object]]:
    """Detector distillation's defaults (measured, docs/detection.md): fine-tuning from the face
    SSD's real MobileNetV1 body at α=1 (no real body exists at other widths: from scratch),
    AdamW with a cosine schedule, photometric + flip augmentation, 30 epochs."""
    m = cfg.model
    init = "face-ssd" if m.alpha == 1.0 and m.backbone == "mobilenet_v1" and not m.init else None
    return [("model.init", init), ("train.optimizer", "adamw"), ("train.lr", 1e-3),
            ("train.schedule", "cosine"), ("train.warmup_epochs", 0.3),
            ("train.weight_decay", 1e-4), ("train.batch_size", 16), ("train.epochs", 30),
            ("train.eval_every", 5), ("data.augment", "light")]


def info(cfg, distilled) -> dict:
    """What a student's checkpoint keeps of its distillation (``meta["distill"]``)."""
    return {"teacher": cfg.distill.teacher, "checkpoint": distilled.teacher["checkpoint"],
            "split": distilled.split, "conf": cfg.distill.conf}


def prepare_distilled(cfg, device):
    """:func:`mbv1.detection.distill_data.prepare` for this process: under torchrun every rank
    labels its share of the frames, then rank 0 writes the split files."""
    import torch.distributed as dist

    from mbv1.detection import distill_data

    multi = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    rank, world = (dist.get_rank(), dist.get_world_size()) if multi else (0, 1)
    return distill_data.prepare(cfg, str(device), rank, world,
                                dist.barrier if multi else (lambda: None), log)


def ap_by_source(coco, results: list[dict], image_ids: list[int]) -> dict:
    """``{source name: {"AP", "AP50", "frames"}}`` of the held-out frames (their COCO images
    carry their ``source``), in percent."""
    from pathlib import Path

    from mbv1.detection.coco_eval import evaluate_coco

    groups: dict[str, list[int]] = {}
    for i in image_ids:
        groups.setdefault(Path(str(coco.imgs[i].get("source", "?"))).name, []).append(i)
    names = {c["id"]: c["name"] for c in coco.cats.values()}
    out = {}
    for name, ids in groups.items():
        keep, per = set(ids), {}
        ap = evaluate_coco(coco, [r for r in results if r["image_id"] in keep], ids, per_class=per)
        if ap["AP"] >= 0 and any(coco.getAnnIds(imgIds=ids)):
            out[name] = {"AP": 100 * ap["AP"], "AP50": 100 * ap["AP50"], "frames": len(ids),
                         "AP50_by_class": {names.get(c, str(c)): 100 * v["AP50"]
                                           for c, v in per.items()}}
    return out


def describe(info: dict, by_source: dict | None = None) -> list[str]:
    """The distilled student's lines of the evaluation: what the ground truth is, AP per
    held-out source, and the student's cost beside its teacher's (mult-adds of both models)."""
    dd = info["distill"]
    lines = [f"distilled from {dd['teacher']}: its boxes at score ≥ {dd['conf']} are the ground "
             "truth (the teacher scores 100 on them)"]
    if by_source:
        lines.append("by held-out source: " + "; ".join(
            f"{n} AP50 {v['AP50']:.1f} AP {v['AP']:.1f} ({v['frames']} frames"
            + "".join(f", {c} {a:.1f}" for c, a in v.get("AP50_by_class", {}).items()) + ")"
            for n, v in by_source.items()))
    try:
        from mbv1.backbone.costs import count_costs
        from mbv1.detection.distill_data import teacher_checkpoint
        from mbv1.detection.predictor import load_ssd
        from mbv1.detection.preprocess import Preprocess

        model, meta = load_ssd(teacher_checkpoint(dd["teacher"]))
        t = count_costs(model, Preprocess.from_meta(meta).input_size)
    except Exception as e:  # the teacher moved or was deleted: the figures stay without it
        return [*lines, f"teacher cost not counted ({e})"]
    student = float(info.get("mult_adds") or 0)
    ratio = f" ({student / t.mult_adds:.2f}x the teacher's)" if student else ""
    lines.append(f"cost: student {student / 1e9:.3f} B mult-adds, {float(info.get('num_params') or 0) / 1e6:.2f} M "
                 f"params{ratio}; teacher {t.mult_adds / 1e9:.3f} B, {t.params / 1e6:.2f} M "
                 "(measured ms side by side: benchmarks/distill_students.py)")
    return lines
