"""What an exported model is, per task: the module as other runtimes see it (eval, BatchNorm
folded, a fixed ``[1, 3, S, S]`` input, named outputs), how a real RGB frame becomes its input,
and the sidecar another program needs to use it (preprocessing, labels, decoding)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mbv1.errors import MBV1Error

__all__ = ["ExportSpec", "export_spec"]


@dataclass
class ExportSpec:
    """One checkpoint, ready to export.

    Attributes:
        task: the checkpoint's task.
        kind: ``detector``, ``classifier`` or ``faces`` (how parity is judged).
        module: eval mode, BN folded, CPU; ``module(x)`` → tuple of tensors (``outputs``).
        input_size: side S of the ``[1, 3, S, S]`` input.
        outputs: output names, in order.
        sidecar: plain values written as ``<file>.json`` beside the model.
        arrays: extra arrays written as ``<file>.<name>.npy`` (the SSD's anchors).
        inputs: ``inputs(rgb)`` → list of ``[1, 3, S, S]`` inputs the frame gives (one for a
            detector or classifier, one per face for a face student).
        decode: detectors: ``decode(outputs, frame_hw)`` → ``(boxes_xyxy [K, 4], scores [K])``.
    """

    task: str
    kind: str
    module: nn.Module
    input_size: int
    outputs: list[str]
    sidecar: dict
    inputs: Callable[[np.ndarray], list[torch.Tensor]]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    decode: Callable | None = None


def export_spec(checkpoint: str | Path, resolution: int | None = None) -> ExportSpec:
    """The :class:`ExportSpec` of an mbv1 checkpoint (any task mbv1 can run)."""
    from mbv1.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    task = ckpt.get("task")
    if task == "detection" and "faster_rcnn" in (ckpt.get("meta") or {}):
        raise MBV1Error(f"{checkpoint}: mbv1 export writes SSD detectors; a Faster R-CNN "
                        "(proposals and their count decided at run time) runs with `mbv1 "
                        "detect --weights` on eager PyTorch")
    if task == "detection":
        return _detector(checkpoint, resolution)
    if task in ("classification", "fine-grained", "geolocation"):
        return _classifier(checkpoint, task, resolution)
    if task in ("face-attributes", "face-embeddings", "faces"):
        return _face_student(checkpoint, resolution)
    raise MBV1Error(f"{checkpoint}: cannot export a {task!r} checkpoint")


def _detector(checkpoint, resolution) -> ExportSpec:
    from mbv1.backbone import fuse_bn
    from mbv1.detection.postprocess import PostprocessConfig, postprocess
    from mbv1.detection.predictor import load_ssd
    from mbv1.detection.preprocess import Preprocess

    model, meta = load_ssd(checkpoint)
    model = fuse_bn(model).eval()
    pre = Preprocess.from_meta(meta, resolution)
    s = pre.input_size
    anchors = model.anchors_for(s, s, torch.device("cpu"))
    post = PostprocessConfig(**{k: v for k, v in (meta.get("postprocess") or {}).items()
                                if k in ("conf", "iou", "max_det")})

    def decode(outputs, frame_hw):
        codes, logits = (torch.as_tensor(np.asarray(o)) for o in outputs)
        (det,) = postprocess(codes, model.scores(logits), anchors, post)
        sx, sy = pre.frame_scale(*frame_hw)
        boxes = det["boxes_xyxy"] * torch.tensor([sx, sy, sx, sy])
        return boxes.numpy(), det["scores"].numpy()

    labels = list(meta.get("labels") or [str(i) for i in range(model.config.num_classes)])
    sidecar = {"task": "detection", "input": "images [1, 3, S, S] float32, NCHW, RGB",
               "preprocess": pre.to_dict(), "labels": labels, "ssd": model.config.to_dict(),
               "scoring": model.config.scoring, "postprocess": {"conf": post.conf,
                                                                 "iou": post.iou,
                                                                 "max_det": post.max_det},
               "decode": "box_codes are TF OD API Faster R-CNN codes (ty, tx, th, tw scaled by "
                         "10, 10, 5, 5) against anchors.npy (ymin, xmin, ymax, xmax in 0..1); "
                         "class 0 of class_logits is the background"}
    return ExportSpec("detection", "detector", model, s, ["box_codes", "class_logits"], sidecar,
                      lambda rgb: [pre(rgb)], {"anchors": anchors.numpy()}, decode)


def _classifier(checkpoint, task, resolution) -> ExportSpec:
    from mbv1.backbone import fuse_bn
    from mbv1.checkpoint import load_model
    from mbv1.datasets.augment import eval_preprocessing, eval_transform, to_tensor

    if task == "geolocation":
        from mbv1.geo.model import build_model
    else:
        from mbv1.classification.model import build_model
    loaded = load_model(checkpoint, task, build_model)
    model = fuse_bn(loaded.model).eval()
    transform, mean, std = eval_preprocessing(loaded.meta, loaded.config)
    size = resolution or int(loaded.meta.get("input_size") or loaded.meta.get("resolution") or 224)
    crop = float(loaded.meta.get("eval_crop") or 0.875)
    if resolution:
        transform = eval_transform(size, crop)

    def inputs(rgb):
        return [to_tensor(transform(np.asarray(rgb), None), mean, std)[None]]

    sidecar = {"task": task, "input": "images [1, 3, S, S] float32, NCHW, RGB",
               "preprocess": {"input_size": size, "eval_crop": crop, "mean": list(mean),
                              "std": list(std), "resize": "shorter side to S/eval_crop, "
                              "central S x S crop, then (x/255 - mean)/std"},
               "labels": list(loaded.meta.get("labels") or [])}
    if task == "geolocation":
        sidecar["partition_sha256"] = loaded.meta.get("partition_sha256")
    return ExportSpec(task, "classifier", model, size, ["logits"], sidecar, inputs)


def _face_student(checkpoint, resolution) -> ExportSpec:
    from mbv1.datasets.images import crop_to_tensor
    from mbv1.faces.student import FaceModel

    fm = FaceModel(checkpoint)
    size = resolution or fm.resolution
    keys = sorted(fm.heads)
    finder = None

    def inputs(rgb):
        nonlocal finder
        if finder is None:
            finder = fm.finder()
        return [crop_to_tensor(f.crop, size, fm.mean, fm.std)[None] for f in finder(rgb)]

    from mbv1.teachers.face_api_nets import EXPRESSIONS, GENDERS

    sidecar = {"task": fm.task, "input": "face crops [1, 3, S, S] float32, NCHW, RGB",
               "preprocess": {"input_size": size, "mean": list(fm.mean), "std": list(fm.std),
                              "crop": fm.crop},
               "outputs": {"gender": list(GENDERS), "expression": list(EXPRESSIONS),
                           "age": "years", "embedding": "L2-normalised"}}
    from mbv1.runtimes.cached import TupleOutputs

    module = TupleOutputs(fm.model.eval(), keys, "forward_heads_only")
    return ExportSpec(fm.task, "faces", module, size, keys, sidecar, inputs)
