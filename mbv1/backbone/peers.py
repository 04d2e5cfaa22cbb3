"""Read peer weight files (timm, TF-slim, Keras) and write them as mbv1 checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mbv1.backbone import convert
from mbv1.backbone.costs import count_costs
from mbv1.backbone.mobilenet import MobileNetV1
from mbv1.checkpoint import load_model_state, save_checkpoint
from mbv1.errors import MBV1Error

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
    raise MBV1Error(f"unknown weights layout {fmt!r}: use timm, tf-slim or keras")


def model_from_state(state: dict, backbone_kw: dict) -> MobileNetV1:
    num_classes = state["fc.weight"].shape[0] if "fc.weight" in state else 0
    model = MobileNetV1(alpha=convert.infer_alpha(state), num_classes=num_classes, **backbone_kw)
    load_model_state(model, state, "converted weights")
    return model


def convert_file(src: Path, fmt: str, out: Path, resolution: int = 224) -> tuple[Path, dict]:
    """Convert a peer's MobileNetV1 weights into an mbv1 classification checkpoint."""
    state, backbone_kw = convert_state(read_arrays(src), fmt)
    model = model_from_state(state, backbone_kw)
    costs = count_costs(model, resolution)
    config = {"model": {**model.config.to_dict(), "num_classes": model.num_classes},
              "data": {"resolution": resolution}}
    # timm normalises with ImageNet mean/std; TF models take x/127.5 - 1 (mean = std = 0.5).
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if fmt == "timm" else ((0.5,) * 3, (0.5,) * 3)
    meta = {"num_params": costs.params, "mult_adds": costs.mult_adds, "alpha": model.config.alpha,
            "num_classes": model.num_classes, "input_size": resolution, "mean": list(mean),
            "std": list(std), "activation": model.config.activation, "labels": None,
            "metrics": {}, "source": f"{fmt}: {Path(src).name}"}
    path = save_checkpoint(out, task="classification", model=model, config=config, meta=meta)
    return path, meta
