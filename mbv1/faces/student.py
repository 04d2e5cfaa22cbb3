"""The trained face student as a checkpoint holds it: :func:`build_model` (used by training,
``mbv1 eval``, inference and export alike) and :class:`FaceModel`, the student behind
``mbv1 faces --weights`` and ``mbv1 verify --weights``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mbv1.faces.model import FaceStudent, HeadsConfig, head_probabilities

__all__ = ["FACE_TASKS", "FaceModel", "build_model", "open_face_model", "student_teacher"]

FACE_TASKS = ("face-attributes", "face-embeddings", "faces")


def build_model(meta: dict, model: dict) -> FaceStudent:
    """The student of a face checkpoint: the heads of ``meta["heads"]`` on a MobileNetV1 with the
    body settings of ``model`` (a config ``model`` section), the age and embedding heads
    starting at the training targets' priors recorded in ``meta["prior"]``; or, for a
    checkpoint of the shared face model (``meta["shared"]``), that model
    (:func:`mbv1.faces.shared.build_shared`)."""
    from mbv1.backbone import backbone_config

    if meta.get("shared"):
        from mbv1.faces.shared import build_shared

        return build_shared(meta)
    student = FaceStudent(HeadsConfig(**meta["heads"]), **backbone_config(model).to_dict(),
                          dropout=float(model.get("dropout", 0.0)))
    student.apply_priors(meta.get("prior"))
    return student


class FaceModel:
    """A trained mbv1 face student (``face-attributes``, ``face-embeddings`` or ``faces``).

    ``predict(crops)`` takes canonical crops (uint8 RGB, the policy in ``crop``) and returns
    numpy arrays per head: ``gender [N, 2]`` and ``expression [N, 7]`` probabilities, ``age
    [N]`` years, ``embedding [N, D]`` unit length, ``celeba [N, 40]`` probabilities; one
    backbone pass for all heads, on ``backend`` (:mod:`mbv1.runtimes.cached`: ``auto`` takes the
    fastest exported runtime that passes its parity check on the CPU). ``precision``: on
    OpenVINO, ``fp32`` (the API's default), ``auto`` (``mbv1 faces``' default: int8 when it says
    what fp32 says on at least 99% of the held-out real faces, :meth:`int8_plan`) or ``int8``.
    """

    def __init__(self, checkpoint: str | Path, device: str = "cpu", backend: str = "auto",
                 warn=None, loaded=None, precision: str = "fp32"):
        from mbv1.backbone import fuse_bn
        from mbv1.checkpoint import load_model
        from mbv1.errors import MBV1Error
        from mbv1.runtimes.cached import FastForward, TupleOutputs, check_precision, file_key

        self.device = torch.device(device)
        check_precision(precision, backend, self.device)
        loaded = loaded or load_model(checkpoint, FACE_TASKS, build_model)
        if not isinstance(loaded.model, FaceStudent):
            raise MBV1Error(f"{checkpoint} is the shared face model (detector and heads in one): "
                            "run it with `mbv1 faces --weights` or `mbv1 verify --weights`")
        meta = self.meta = loaded.meta
        self.task = loaded.task
        self.model = fuse_bn(loaded.model).to(self.device).eval()
        self.heads = list(meta["heads"]["heads"])
        self.resolution = int(meta.get("resolution") or meta.get("input_size") or 224)
        self.mean = tuple(meta.get("mean") or (0.5, 0.5, 0.5))
        self.std = tuple(meta.get("std") or (0.5, 0.5, 0.5))
        self.crop = dict(meta.get("crop") or {})
        self.checkpoint = Path(checkpoint)
        self.keys = sorted(self.heads)
        r = self.resolution
        self.module = TupleOutputs(self.model, self.keys, "forward_heads_only")
        self.forward = FastForward(self.module, (3, r, r), self.keys,
                                   f"{self.checkpoint.stem}-student", file_key(loaded.path),
                                   backend, self.device, warn,
                                   int8=self.int8_plan(precision, warn))
        self.backend, self.precision = self.forward.backend, self.forward.precision
        self.int8_gate = self.forward.gate  # the verdict, if any

    def finder(self):
        """A face finder (mbv1's face SSD) cutting crops as this student's training crops were
        cut (policy, size, margin, MTCNN landmarks or not): for calibration and checks on real
        frames."""
        from mbv1.faces.pipeline import FaceFinder

        crop = self.crop
        return FaceFinder(policy=crop.get("policy", "box"), size=crop.get("size", 160),
                          margin=crop.get("margin", 32),
                          landmarks=bool(crop.get("landmarks", True)))

    def int8_plan(self, precision: str = "auto", warn=None):
        """The int8 plan of this student: calibrated on the faces :meth:`finder` finds in the
        embedded calibration frames, gated on those of the held-out ones
        (:func:`mbv1.datasets.calibration.real_frames`: face-api's demo photos and the clips'
        other frames): the share of faces on which int8 says what fp32 says
        (:func:`mbv1.faces.agreement.faces_agree`)."""
        from mbv1.datasets.calibration import batch_int8_plan
        from mbv1.datasets.images import crop_to_tensor
        from mbv1.errors import MBV1Error
        from mbv1.faces.agreement import RULE, faces_agree

        finder = []  # built once, on the first frames to crop

        def crops(frames, kind: str) -> torch.Tensor:
            if not finder:
                finder.append(self.finder())
            xs = [crop_to_tensor(f.crop, self.resolution, self.mean, self.std)
                  for rgb in frames for f in finder[0](rgb)]
            if not xs:
                raise MBV1Error(f"no faces in the {kind} frames to judge int8 on")
            return torch.stack(xs)

        return batch_int8_plan(self.module, crops, lambda ref, got: faces_agree(self.keys, ref, got),
                               f"embedded-faces-v1:{self.resolution}:{self.mean}:{self.std}:"
                               f"{self.crop}", RULE, precision, warn,
                               f"fp32's outputs on held-out real faces ({RULE})")

    @torch.inference_mode()
    def predict(self, crops: list[np.ndarray]) -> dict[str, np.ndarray]:
        from mbv1.datasets.images import crop_to_tensor

        if not crops:
            return {}
        x = torch.stack([crop_to_tensor(c, self.resolution, self.mean, self.std) for c in crops])
        return head_probabilities(self.keys, self.forward(x.to(self.device)))


def open_face_model(checkpoint: str | Path, device: str = "cpu", backend: str = "auto",
                    warn=None, precision: str = "fp32"):
    """The model of a face checkpoint for inference: a :class:`FaceModel` (a student, on face
    crops), or :class:`mbv1.faces.shared_infer.SharedFaces` for the shared face model (its
    own detector and heads, on frames)."""
    from mbv1.checkpoint import load_model

    loaded = load_model(checkpoint, FACE_TASKS, build_model)
    if isinstance(loaded.model, FaceStudent):
        return FaceModel(checkpoint, device, backend, warn, loaded=loaded, precision=precision)
    from mbv1.faces.shared_infer import SharedFaces

    return SharedFaces(loaded, device, backend, warn)


def student_teacher(spec: str, device: str, need: tuple[str, ...], backend: str = "auto",
                    warn=None):
    """A trained mbv1 face student as a teacher (the teacher registry's ``checkpoint_teacher``):
    ``fn(canonical crops) -> {head: numpy}``."""
    from mbv1.errors import MBV1Error

    fm = FaceModel(Path(spec), device, backend, warn)
    missing = [h for h in need if h not in fm.heads]
    if missing:
        raise MBV1Error(f"teacher checkpoint {spec} has no {', '.join(missing)} head "
                        f"(it has {', '.join(fm.heads)})")
    return lambda crops: fm.predict(crops)
