"""Read peer weight files (timm, TF-slim, Keras MobileNetV1; torchvision MobileNetV2) and write
them as mbv1 checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from mbv1.backbone import convert
from mbv1.backbone.bodies import build_body
from mbv1.backbone.costs import count_costs
from mbv1.checkpoint import load_model_state, save_checkpoint
from mbv1.errors import MBV1Error

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Peers that normalise with ImageNet mean/std; TF models take x/127.5 - 1 (mean = std = 0.5).
IMAGENET_NORMALISED = ("timm", "torchvision")
FORMATS = ("timm", "tf-slim", "keras", "torchvision")


def read_arrays(path: Path) -> dict:
    """Tensors of a weight file by name: .pth/.pt/.bin (torch), .safetensors, .npz, .h5."""
    path = Path(path)
    if not path.is_file():
        raise MBV1Error(f"weights file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".pth", ".pt", ".bin"):
            state = torch.load(path, map_location="cpu", weights_only=True)
            for key in ("state_dict", "model", "state_dict_ema"):
                if isinstance(state, dict) and isinstance(state.get(key), dict):
                    state = state[key]
            return state
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        if suffix == ".npz":
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        if suffix in (".h5", ".hdf5", ".keras"):
            import h5py

            out = {}
            with h5py.File(path, "r") as f:
                root = f["model_weights"] if "model_weights" in f else f
                root.visititems(lambda n, o: out.__setitem__(n, np.asarray(o))
                                if isinstance(o, h5py.Dataset) else None)
            return out
    except MBV1Error:
        raise
    except Exception as e:  # corrupt or foreign file: one line, not a traceback
        raise MBV1Error(f"cannot read weights {path}: {type(e).__name__}: {str(e)[:120]}") from None
    raise MBV1Error(f"unknown weights format {suffix!r} for {path}: use .pth, .safetensors, .npz or .h5")


def convert_state(arrays: dict, fmt: str) -> tuple[dict, dict]:
    if fmt == "timm":
        return convert.from_timm(arrays)
    if fmt == "tf-slim":
        return convert.from_tf_slim(arrays)
    if fmt == "keras":
        return convert.from_keras(arrays)
    if fmt == "torchvision":
        return convert.from_torchvision(arrays)
    raise MBV1Error(f"unknown weights layout {fmt!r}: use {', '.join(FORMATS)}")


def peer_norm(fmt: str) -> tuple[tuple, tuple]:
    """(mean, std) of the input normalisation the peer's weights were trained with."""
    return ((IMAGENET_MEAN, IMAGENET_STD) if fmt in IMAGENET_NORMALISED
            else ((0.5,) * 3, (0.5,) * 3))


def model_from_state(state: dict, backbone_kw: dict) -> nn.Module:
    """The body (``backbone_kw["backbone"]``, MobileNetV1 by default) a converted state dict
    fills, its width read from the weights."""
    kw = dict(backbone_kw)
    backbone = kw.pop("backbone", "mobilenet_v1")
    alpha = (convert.infer_alpha_v2(state) if backbone == "mobilenet_v2"
             else convert.infer_alpha(state))
    num_classes = state["fc.weight"].shape[0] if "fc.weight" in state else 0
    model = build_body(backbone, alpha=alpha, num_classes=num_classes, **kw)
    load_model_state(model, state, "converted weights")
    return model


def convert_file(src: Path, fmt: str, out: Path, resolution: int = 224) -> tuple[Path, dict]:
    """Convert a peer's MobileNetV1 (timm, TF-slim, Keras) or MobileNetV2 (torchvision) weights
    into an mbv1 classification checkpoint."""
    state, backbone_kw = convert_state(read_arrays(src), fmt)
    model = model_from_state(state, backbone_kw)
    costs = count_costs(model, resolution)
    config = {"model": {**model.config.to_dict(), "num_classes": model.num_classes},
              "data": {"resolution": resolution}}
    mean, std = peer_norm(fmt)
    meta = {"num_params": costs.params, "mult_adds": costs.mult_adds,
            "backbone": model.config.backbone, "alpha": model.config.alpha,
            "num_classes": model.num_classes, "input_size": resolution, "mean": list(mean),
            "std": list(std), "activation": model.config.activation, "labels": None,
            "metrics": {}, "source": f"{fmt}: {Path(src).name}"}
    path = save_checkpoint(out, task="classification", model=model, config=config, meta=meta)
    return path, meta
