"""Faces in, crops out: detect → 5-point landmarks → canonical crop, for photos and videos.

:class:`FaceFinder` turns one RGB frame into :class:`Face` records:

1. **detect**: mbv1's SSD-MobileNetV1 face model (``detector="ssd"``, the default: the real
   WIDER FACE weights of face-api, ``mbv1 detect``'s default) or facenet-pytorch's MTCNN
   (``detector="mtcnn"``: its P/R/O-Net weights ship in the wheel);
2. **landmarks**: MTCNN's five points. With the SSD, MTCNN runs on a small square region around
   each detected face (1.6x the box's long side, resampled to 160 px), and the MTCNN face that
   overlaps the SSD box most (IoU ≥ 0.3) gives the landmarks; with ``detector="mtcnn"`` they
   come with the detection;
3. **crop**: the canonical crop (:mod:`mbv1.faces.align`: ``aligned`` by similarity transform
   onto a fixed template, or ``box`` + margin; no landmarks → ``box``), the input of the
   FaceNet teacher and of every mbv1 face student;
4. **attribute crop**: face-api's own crop of the detection box (clip, floor, no margin:
   :func:`mbv1.teachers.face_api_nets.face_api_crop_box`), the input of the face-api attribute
   teacher. For SSD boxes the box is first un-padded the way face-api does
   (:func:`~mbv1.teachers.face_api_nets.face_api_box_scale`) so that the crop, hence the
   teacher's output, is exactly face-api's on the same photo.

:func:`extract_faces` runs it over a source (image, folder, glob, video with ``vid_stride``)
and caches the crops with their provenance (:mod:`mbv1.faces.cache`). Faces of consecutive
video frames are linked into tracks by box overlap; a track is taken as one identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mbv1.errors import MBV1Error
from mbv1.faces import align

__all__ = ["DETECTORS", "MIN_FACE", "Face", "FaceFinder", "Tracker", "box_iou"]

DETECTORS = ("ssd", "mtcnn", "given")
REGION = 160  # side of the resampled region MTCNN sees around an SSD face
REGION_SCALE = 1.6  # region side / the SSD box's long side
MIN_LANDMARK_IOU = 0.3
MIN_FACE = 12.0  # default min_size: faces smaller than this on their short side are skipped


@dataclass
class Face:
    """One face of a frame.

    Attributes:
        box_xyxy: detection box, frame pixels, ``float [4]``.
        score: detector confidence.
        landmarks: ``[5, 2]`` frame pixels (eyes, nose, mouth corners) or None.
        crop: canonical crop ``uint8 [S, S, 3]`` (policy in ``method``).
        method: ``aligned`` or ``box``.
        affine: ``[2, 3]`` frame → crop transform.
        attr_crop: face-api's crop for the attribute teacher (exact frame pixels), or None.
        attr_box: its ``(x, y, w, h)`` integers, or None.
    """

    box_xyxy: np.ndarray
    score: float
    landmarks: np.ndarray | None
    crop: np.ndarray
    method: str
    affine: np.ndarray
    attr_crop: np.ndarray | None = None
    attr_box: tuple[int, int, int, int] | None = None
    extra: dict = field(default_factory=dict)

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box_xyxy
        return float(max(x1 - x0, 0) * max(y1 - y0, 0))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``[len(a), len(b)]`` of xyxy boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(-1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


class FaceFinder:
    """Detect, landmark and crop the faces of RGB frames.

    Args:
        detector: ``ssd`` (mbv1's face model; ``weights`` overrides its checkpoint), ``mtcnn``,
            or ``given`` (no detector: :meth:`faces_from` crops boxes found elsewhere, e.g. by
            the shared face model).
        landmarks: look for 5-point landmarks (needed for ``policy="aligned"``).
        policy: canonical crop policy, ``aligned`` or ``box`` (:mod:`mbv1.faces.align`).
        size, margin: canonical crop side and margin in output pixels.
        conf: minimum detection score.
        min_size: ignore faces whose box is smaller than this on its short side (pixels).
        attr_crops: also cut face-api's attribute crop.
        device: torch device of the detectors.
        backend, warn, precision: the SSD's inference engine and precision
            (:class:`mbv1.detection.predictor.Detector`).
    """

    def __init__(self, detector: str = "ssd", landmarks: bool = True, policy: str = "box",
                 size: int = align.DEFAULT_SIZE, margin: int = align.DEFAULT_MARGIN,
                 conf: float = 0.5, min_size: float = MIN_FACE, attr_crops: bool = True,
                 weights: str | Path | None = None, device: str = "cpu",
                 resolution: int | None = None, backend: str = "auto", warn=None,
                 precision: str = "fp32"):
        if detector not in DETECTORS:
            raise MBV1Error(f"unknown face detector {detector!r}: use one of {', '.join(DETECTORS)}")
        if policy not in align.CROP_POLICIES:
            raise MBV1Error(f"unknown crop policy {policy!r}: use one of "
                            f"{', '.join(align.CROP_POLICIES)}")
        self.detector_name, self.policy, self.size, self.margin = detector, policy, size, margin
        self.conf, self.min_size, self.attr_crops = conf, min_size, attr_crops
        self.want_landmarks = landmarks
        self.device = device
        self._ssd = None
        self._mtcnn = None
        if detector == "ssd":
            from mbv1.detection.postprocess import PostprocessConfig
            from mbv1.detection.predictor import Detector

            self.weights = Path(weights) if weights else _default_ssd()
            self._ssd = Detector(self.weights, device=device, resolution=resolution,
                                 post=PostprocessConfig(conf, 0.5, 100, None), backend=backend,
                                 warn=warn, precision=precision)
        else:
            self.weights = None
        if detector == "mtcnn" or (landmarks and detector != "given"):
            self._mtcnn = _mtcnn(device)
        self.want_landmarks = landmarks and self._mtcnn is not None

    @property
    def ssd(self):
        """The face SSD's :class:`~mbv1.detection.predictor.Detector` (None with MTCNN)."""
        return self._ssd

    def describe(self) -> dict:
        """The pipeline's settings as plain values (stored beside cached crops)."""
        return {"detector": self.detector_name, "weights": str(self.weights or "facenet-pytorch"),
                "landmarks": "mtcnn" if self.want_landmarks else None, "policy": self.policy,
                "size": self.size, "margin": self.margin, "conf": self.conf,
                "min_size": self.min_size,
                "template": align.template(self.size, self.margin).round(3).tolist()}

    # -- detection ------------------------------------------------------------------------
    def _detect(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
        if self._ssd is not None:
            d = self._ssd(rgb)
            return d.boxes_xyxy.astype(np.float64), d.scores.astype(np.float64), [None] * len(d)
        boxes, probs, points = self._mtcnn.detect(rgb, landmarks=True)
        if boxes is None:
            return np.zeros((0, 4)), np.zeros(0), []
        boxes, probs = np.asarray(boxes, np.float64), np.asarray(probs, np.float64)
        keep = probs >= self.conf
        pts = [np.asarray(p, np.float64) for p, k in zip(points, keep) if k]
        return boxes[keep], probs[keep], pts

    def region_landmarks(self, rgb: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """MTCNN's ``(landmarks [5, 2], mtcnn box [4])`` for the face in ``box`` (frame pixels),
        found in a resampled square region around it; None when MTCNN finds no matching face."""
        x0, y0, x1, y1 = (float(v) for v in box)
        region, m = _region(rgb, (x0 + x1) / 2, (y0 + y1) / 2,
                            max(x1 - x0, y1 - y0) * REGION_SCALE)
        s = m[0, 0]
        boxes, _probs, points = self._mtcnn.detect(region, landmarks=True)
        if boxes is None:
            return None
        boxes = np.asarray(boxes, np.float64)
        ssd_in_region = np.array([x0, y0, x1, y1]) * s + np.r_[m[:, 2], m[:, 2]]
        iou = box_iou(boxes[:, :4], ssd_in_region[None])[:, 0]
        i = int(iou.argmax())
        if iou[i] < MIN_LANDMARK_IOU:
            return None
        lm = (np.asarray(points[i], np.float64) - m[:, 2]) / s
        mbox = (boxes[i, :4] - np.r_[m[:, 2], m[:, 2]]) / s
        return lm, mbox

    # -- main -----------------------------------------------------------------------------
    def __call__(self, rgb: np.ndarray) -> list[Face]:
        """Faces of one ``uint8 [H, W, 3]`` RGB frame, in the detector's order."""
        rgb = np.ascontiguousarray(rgb)
        if self.detector_name == "given":
            raise MBV1Error("this FaceFinder has no detector (detector='given'): use faces_from")
        boxes, scores, points = self._detect(rgb)
        return self.faces_from(rgb, boxes, scores, points)

    def faces_from(self, rgb: np.ndarray, boxes, scores, points=None) -> list[Face]:
        """Faces of ``rgb`` at detection ``boxes`` (xyxy frame pixels) with their ``scores``
        (and landmarks ``points``, or None each): landmarks, canonical and attribute crops."""
        from mbv1.teachers.face_api_nets import face_api_box_scale, face_api_crop_box

        rgb = np.ascontiguousarray(rgb)
        h, w = rgb.shape[:2]
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        points = [None] * len(boxes) if points is None else points
        ssd_boxes = self.detector_name != "mtcnn"  # face-api's SSD (or the shared model's)
        sx, sy = face_api_box_scale(h, w) if ssd_boxes else (1.0, 1.0)
        faces = []
        for box, score, lm in zip(boxes, scores, points):
            if min(box[2] - box[0], box[3] - box[1]) < self.min_size:
                continue
            crop_box = box
            extra: dict = {}
            if lm is None and self.want_landmarks and ssd_boxes:
                found = self.region_landmarks(rgb, box)
                if found is not None:
                    lm, crop_box = found
                    extra["mtcnn_box_xyxy"] = [round(float(v), 2) for v in crop_box]
            if not self.want_landmarks:
                lm = None
            img, aff, method = align.crop(rgb, crop_box, lm, self.policy, self.size, self.margin)
            attr_crop = attr_box = None
            if self.attr_crops:
                attr_box = face_api_crop_box(box * [sx, sy, sx, sy], w, h)
                if attr_box is not None:
                    x, y, bw, bh = attr_box
                    attr_crop = rgb[y:y + bh, x:x + bw]
            faces.append(Face(box.astype(np.float32), float(score), lm, img, method, aff,
                              attr_crop, attr_box, extra))
        return faces


def _region(rgb: np.ndarray, cx: float, cy: float, side: float) -> tuple[np.ndarray, np.ndarray]:
    """A ``REGION`` square of the frame centred on (cx, cy), ``side`` pixels wide (zeros
    outside), and its ``[2, 3]`` frame → region affine. Downscaling box-filters (INTER_AREA)."""
    import cv2

    n = max(int(np.ceil(side)), 1)
    x0, y0 = int(np.floor(cx - n / 2)), int(np.floor(cy - n / 2))
    s = REGION / n
    m = np.array([[s, 0.0, -x0 * s], [0.0, s, -y0 * s]])
    if s >= 1:
        region = cv2.warpAffine(rgb, m, (REGION, REGION), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        return region, m
    h, w = rgb.shape[:2]
    canvas = np.zeros((n, n, 3), np.uint8)
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + n, w), min(y0 + n, h)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    # cv2.resize samples pixel centres: region u = s·x + (s − 1)/2, not s·x.
    m[:, 2] += (s - 1) / 2
    return cv2.resize(canvas, (REGION, REGION), interpolation=cv2.INTER_AREA), m


def _default_ssd() -> Path:
    from mbv1.detection.face_model import default_checkpoint

    path = default_checkpoint()
    if not path.exists():
        raise MBV1Error(f"the default face model is not converted yet ({path}): run "
                        "`mbv1 weights pull`")
    return path


def _mtcnn(device: str):
    try:
        from facenet_pytorch import MTCNN
    except ImportError:  # pragma: no cover - a declared dependency
        raise MBV1Error("facenet-pytorch is not installed: `pip install facenet-pytorch==2.5.3 "
                        "--no-deps` gives MTCNN (landmarks and the mtcnn detector)") from None
    import torch

    mtcnn = MTCNN(min_face_size=20, select_largest=False, keep_all=True, post_process=False,
                  device=device)
    # Channels-last weights make every conv output channels-last, so the max-pools after them
    # take PyTorch's NHWC kernel: 10x faster than its NCHW one on the CPU (R-Net's pool on
    # [30, 28, 22, 22]: 3.4 -> 0.38 ms), the same landmarks to 1e-5 px.
    for net in (mtcnn.pnet, mtcnn.rnet, mtcnn.onet):
        net.to(memory_format=torch.channels_last)
    return mtcnn


class Tracker:
    """Greedy IoU linking of faces across consecutive processed frames of one video: a face
    continues the track of the previous frame's face it overlaps most (IoU ≥ ``iou``), else it
    starts a new track. A track is taken as one identity (pairs for verification)."""

    def __init__(self, iou: float = 0.3):
        self.iou = iou
        self.prev_boxes = np.zeros((0, 4))
        self.prev_ids: list[int] = []
        self.next_id = 0

    def update(self, boxes: np.ndarray) -> list[int]:
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        ids: list[int] = [-1] * len(boxes)
        if len(boxes) and len(self.prev_boxes):
            iou = box_iou(boxes, self.prev_boxes)
            for _ in range(min(iou.shape)):
                i, j = np.unravel_index(int(iou.argmax()), iou.shape)
                if iou[i, j] < self.iou:
                    break
                ids[i] = self.prev_ids[j]
                iou[i, :] = -1
                iou[:, j] = -1
        for i in range(len(ids)):
            if ids[i] < 0:
                ids[i] = self.next_id
                self.next_id += 1
        self.prev_boxes, self.prev_ids = boxes, ids
        return ids
