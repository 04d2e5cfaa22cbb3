"""``mbv1 detect`` for Faster R-CNN checkpoints (``meta["faster_rcnn"]``): the same interface
as :class:`mbv1.detection.predictor.Detector` (``prepare``, ``__call__`` giving
:class:`~mbv1.detection.predictor.Detections` in frame pixels, ``timings``, ``backend``,
``pre``, ``device``), so :func:`mbv1.detection.run.detect` streams it into the same run folder
with the same outputs. Eager PyTorch only: the exported runtimes run SSD checkpoints for now."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from mbv1.checkpoint import load_checkpoint, load_model
from mbv1.detection.faster_rcnn import build_model, is_faster_rcnn
from mbv1.detection.postprocess import PostprocessConfig
from mbv1.detection.predictor import Detections, Timings, check_classes, label_space
from mbv1.detection.preprocess import Preprocess
from mbv1.errors import MBV1Error

EXPORT_NOTE = ("exported runtimes (ONNX Runtime, OpenVINO) run SSD checkpoints only for now: "
               "this Faster R-CNN runs eager (PyTorch)")


def is_two_stage_checkpoint(path: str | Path) -> bool:
    """Whether a detection checkpoint holds a Faster R-CNN (``meta["faster_rcnn"]``)."""
    return is_faster_rcnn(dict(load_checkpoint(path, "detection").get("meta") or {}))


class TwoStageDetector:
    """Run a Faster R-CNN-MobileNetV1 checkpoint on RGB frames.

    Args:
        checkpoint: an mbv1 detection checkpoint with ``meta["faster_rcnn"]``.
        device: ``cpu``, ``cuda``, ``cuda:1``…
        backend: ``auto`` (eager, with :data:`EXPORT_NOTE` through ``warn``) or ``eager``;
            ``onnxruntime`` / ``openvino`` are refused in one line.
        resolution: network input side; default the checkpoint's.
        post: score threshold, NMS IoU, max detections, class filter (torchvision's
            second-stage post-processing; ``pre_nms_top_k`` does not apply).
    """

    def __init__(self, checkpoint: str | Path, device: str = "cpu", backend: str = "auto",
                 resolution: int | None = None, post: PostprocessConfig | None = None,
                 warn=None):
        if backend not in ("auto", "eager"):
            raise MBV1Error(f"--backend {backend}: {EXPORT_NOTE}; use --backend eager or auto")
        from mbv1.devices import resolve_device

        self.device = resolve_device(device) if device == "auto" else torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise MBV1Error("--device cuda asked for, but PyTorch sees no CUDA GPU here: use --device cpu")
        loaded = load_model(checkpoint, "detection", build_model)
        self.meta, self.checkpoint = loaded.meta, Path(checkpoint)
        model = loaded.model
        self.labels, self.category_ids = label_space(self.meta, model.config.num_classes)
        self.pre = Preprocess.from_meta(self.meta, resolution)
        self.post = post or PostprocessConfig()
        check_classes(self.post, self.labels)
        from mbv1.backbone import fuse_bn

        self.model = fuse_bn(model).to(self.device)
        self.backend = "eager"
        if backend == "auto" and warn:
            warn(EXPORT_NOTE)
        self.timings = Timings()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @torch.inference_mode()
    def prepare(self, rgb: np.ndarray) -> torch.Tensor:
        """The network input of a frame (the checkpoint's resize and normalisation)."""
        t0 = time.perf_counter()
        x = self.pre(rgb, self.device)
        self._sync()
        self.timings.ms["preprocess"] += 1000 * (time.perf_counter() - t0)
        return x

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray, x: torch.Tensor | None = None) -> Detections:
        """Detect in one ``uint8 [H, W, 3]`` RGB frame (``x``: its input from :meth:`prepare`)."""
        if x is None:
            x = self.prepare(rgb)
        t1 = time.perf_counter()
        out = self.model(x)
        self._sync()
        t2 = time.perf_counter()
        p = self.post
        (det,) = self.model.detect(out, x.shape[-2], x.shape[-1], p.conf, p.iou, p.max_det,
                                   p.classes)
        sx, sy = self.pre.frame_scale(*rgb.shape[:2])
        h, w = rgb.shape[:2]
        scale = torch.tensor([sx, sy, sx, sy], device=det["boxes_xyxy"].device)
        limit = torch.tensor([w, h, w, h], device=scale.device)
        boxes = torch.minimum(det["boxes_xyxy"] * scale, limit).cpu().numpy()
        labels = det["labels"].cpu().numpy()
        result = Detections(boxes.astype(np.float32), det["scores"].cpu().numpy(), labels,
                            [self.labels[i] for i in labels], [self.category_ids[i] for i in labels])
        t3 = time.perf_counter()
        self.timings.frames += 1
        for k, dt in (("inference", t2 - t1), ("postprocess", t3 - t2)):
            self.timings.ms[k] += 1000 * dt
        return result
