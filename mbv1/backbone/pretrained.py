"""Pretrained body weights (MobileNetV1, or MobileNetV2) from anywhere, as one
:class:`InitWeights`: an mbv1 checkpoint (file or run folder, any task), a peer's file (timm,
TF-slim, Keras MobileNetV1; torchvision MobileNetV2; converted by :mod:`mbv1.backbone.peers`) or
a name of :data:`NAMED_INIT` (``face-ssd``: the α=1 body of the pulled face detector, WIDER
FACE). Used by fine-tuning (``model.init``) and by the face students' feature teacher."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mbv1.errors import MBV1Error


@dataclass
class InitWeights:
    """Weights to start from: a state dict plus what they imply for the model config."""

    state: dict
    source: str
    backbone: dict = field(default_factory=dict)  # activation / padding / bn_eps of the weights
    mean: tuple | None = None
    std: tuple | None = None
    body: str = "mobilenet_v1"  # which body the weights hold (mbv1.backbone.bodies.BODIES)


def _face_ssd() -> Path:
    from mbv1.detection.face_model import default_checkpoint

    return default_checkpoint()


def _coco_ssdlite() -> Path:
    from mbv1.detection.coco_model import default_checkpoint

    return default_checkpoint()


def _imagenet_v2() -> Path:
    from mbv1.assets import cache_dir

    return cache_dir() / "checkpoints" / IMAGENET_V2_NAME


IMAGENET_V2_NAME = "mobilenet-v2-imagenet-224.pt"
# Names that ``model.init`` accepts besides paths: real pretrained models that mbv1 pulls.
NAMED_INIT = {
    # the α=1 MobileNetV1 body of face-api's SSD face detector (WIDER FACE), `mbv1 weights pull`
    "face-ssd": _face_ssd,
    # the COCO SSDLite-MobileNetV2 (TF.js coco-ssd): the whole detector for detection, its
    # MobileNetV2 body for any other task
    "coco-ssdlite": _coco_ssdlite,
    # torchvision's ImageNet MobileNetV2 (1000 classes), converted by `mbv1 weights pull`
    "imagenet-v2": _imagenet_v2,
}
# The width of each named body, known without reading it.
NAMED_ALPHA = {"face-ssd": 1.0, "coco-ssdlite": 1.0, "imagenet-v2": 1.0}
# The first weight of each body: where a state dict holds one, and which.
BODY_STEMS = {"mobilenet_v1": "conv0.conv.weight", "mobilenet_v2": "conv_stem.conv.weight"}
BODY_LABELS = {"mobilenet_v1": "MobileNetV1", "mobilenet_v2": "MobileNetV2"}


def read_init(path: str, fmt: str = "auto") -> InitWeights:
    """Read ``model.init`` in format ``fmt`` (auto, mbv1, timm, tf-slim, keras, torchvision)."""
    from mbv1.backbone import peers
    from mbv1.checkpoint import load_checkpoint

    if path in NAMED_INIT:
        p = NAMED_INIT[path]()
        if not p.exists():
            raise MBV1Error(f"model.init={path} is {p}, which is not there yet: run "
                            "`mbv1 weights pull`")
    else:
        p = Path(path).expanduser()
    if not p.exists():
        raise MBV1Error(f"model.init not found: {p}")
    if fmt in ("auto", "mbv1") and (p.is_dir() or p.suffix in (".pt", ".pth")):
        try:
            ckpt = load_checkpoint(p)
        except MBV1Error:
            if fmt == "mbv1":
                raise
        else:
            model_cfg = (ckpt.get("config") or {}).get("model") or {}
            meta = ckpt.get("meta") or {}
            backbone = {k: model_cfg[k] for k in ("activation", "padding", "bn_eps")
                        if k in model_cfg}
            found = body_of(ckpt["model"])
            body = found[1] if found else model_cfg.get("backbone") or "mobilenet_v1"
            return InitWeights(ckpt["model"], f"mbv1 {ckpt.get('task')} checkpoint {p}", backbone,
                               _triple(meta.get("mean")), _triple(meta.get("std")), body)
    arrays = peers.read_arrays(p)
    if fmt in ("auto", "mbv1"):
        fmt = _guess_peer(arrays, p)
    state, backbone = peers.convert_state(arrays, fmt)
    body = backbone.pop("backbone", "mobilenet_v1")
    mean, std = peers.peer_norm(fmt)
    return InitWeights(state, f"{fmt} weights {p.name}", backbone, mean, std, body)


def _guess_peer(arrays: dict, path: Path) -> str:
    keys = list(arrays)
    if any(k.startswith("conv_stem") for k in keys):
        return "timm"
    if any("MobilenetV1/" in k for k in keys):
        return "tf-slim"
    if any("conv_dw_1" in k for k in keys):
        return "keras"
    if "features.0.0.weight" in arrays and "features.1.conv.0.0.weight" in arrays:
        return "torchvision"
    raise MBV1Error(f"cannot tell the layout of {path} (not an mbv1 checkpoint, no timm / "
                    "TF-slim / Keras MobileNetV1 or torchvision MobileNetV2 names): set "
                    "model.init_format")


def _triple(v) -> tuple | None:
    return tuple(float(x) for x in v) if isinstance(v, (list, tuple)) and len(v) == 3 else None


def body_of(state: dict) -> tuple[str, str] | None:
    """``(key prefix, body name)`` of the body in ``state`` (prefix ``""``, ``"backbone."``...;
    name ``mobilenet_v1`` or ``mobilenet_v2``), or None when it holds none."""
    for k in state:
        for name, stem in BODY_STEMS.items():
            if k.endswith(stem) and (k == stem or k[-len(stem) - 1] == "."):
                return k[: -len(stem)], name
    return None


def body_prefix(state: dict) -> str | None:
    """The key prefix of the body (either) in ``state``, or None when it holds none."""
    found = body_of(state)
    return found[0] if found else None


def init_alpha(init: InitWeights) -> float | None:
    """The width multiplier of the body in ``init`` (MobileNetV1: conv0 has 32α filters;
    MobileNetV2: its last block ``_make_divisible(320α)``)."""
    found = body_of(init.state)
    if found is None:
        return None
    prefix, name = found
    if name == "mobilenet_v2":
        from mbv1.backbone.convert import infer_alpha_v2

        return infer_alpha_v2({k[len(prefix):]: v for k, v in init.state.items()
                               if k.startswith(prefix)})
    return int(init.state[prefix + BODY_STEMS[name]].shape[0]) / 32
