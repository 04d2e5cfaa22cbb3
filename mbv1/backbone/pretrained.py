"""Pretrained MobileNetV1 body weights from anywhere, as one :class:`InitWeights`: an mbv1
checkpoint (file or run folder, any task), a peer's file (timm, TF-slim, Keras; converted by
:mod:`mbv1.backbone.peers`) or a name of :data:`NAMED_INIT` (``face-ssd``: the α=1 body of the
pulled face detector, WIDER FACE). Used by fine-tuning (``model.init``) and by the face
students' feature teacher."""

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


def _face_ssd() -> Path:
    from mbv1.detection.face_model import default_checkpoint

    return default_checkpoint()


# Names that ``model.init`` accepts besides paths: real pretrained bodies that mbv1 pulls.
NAMED_INIT = {
    # the α=1 MobileNetV1 body of face-api's SSD face detector (WIDER FACE), `mbv1 weights pull`
    "face-ssd": _face_ssd,
}
# The width of each named body, known without reading it.
NAMED_ALPHA = {"face-ssd": 1.0}


def read_init(path: str, fmt: str = "auto") -> InitWeights:
    """Read ``model.init`` in format ``fmt`` (auto, mbv1, timm, tf-slim, keras)."""
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
            return InitWeights(ckpt["model"], f"mbv1 {ckpt.get('task')} checkpoint {p}", backbone,
                               _triple(meta.get("mean")), _triple(meta.get("std")))
    arrays = peers.read_arrays(p)
    if fmt in ("auto", "mbv1"):
        fmt = _guess_peer(arrays, p)
    state, backbone = peers.convert_state(arrays, fmt)
    mean, std = ((peers.IMAGENET_MEAN, peers.IMAGENET_STD) if fmt == "timm"
                 else ((0.5,) * 3, (0.5,) * 3))
    return InitWeights(state, f"{fmt} weights {p.name}", backbone, mean, std)


def _guess_peer(arrays: dict, path: Path) -> str:
    keys = list(arrays)
    if any(k.startswith("conv_stem") for k in keys):
        return "timm"
    if any("MobilenetV1/" in k for k in keys):
        return "tf-slim"
    if any("conv_dw_1" in k for k in keys):
        return "keras"
    raise MBV1Error(f"cannot tell the layout of {path} (not an mbv1 checkpoint, no timm / "
                    "TF-slim / Keras MobileNetV1 names): set model.init_format")


def _triple(v) -> tuple | None:
    return tuple(float(x) for x in v) if isinstance(v, (list, tuple)) and len(v) == 3 else None


def body_prefix(state: dict) -> str | None:
    """The key prefix of a MobileNetV1 body in ``state`` (``""``, ``"backbone."``...), or
    None when it holds none."""
    for k in state:
        if k.endswith("conv0.conv.weight"):
            return k[: -len("conv0.conv.weight")]
    return None


def init_alpha(init: InitWeights) -> float | None:
    """The width multiplier of the body in ``init`` (conv0 has 32α filters)."""
    prefix = body_prefix(init.state)
    if prefix is None:
        return None
    return int(init.state[prefix + "conv0.conv.weight"].shape[0]) / 32
