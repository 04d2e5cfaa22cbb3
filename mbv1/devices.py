"""Device names as users type them (``auto``, ``cpu``, ``cuda``, ``cuda:N``) → torch devices,
with one-line errors; shared by training, evaluation and every predictor."""

from __future__ import annotations

import torch

from mbv1.errors import MBV1Error


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` (this process's GPU) or ``cuda:N``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise MBV1Error(f"device {name} asked for, but PyTorch sees no CUDA GPU here (torch "
                            f"{torch.__version__}): use --device cpu or auto")
        index = int(name.split(":")[1]) if ":" in name else local_rank
        if index >= torch.cuda.device_count():
            raise MBV1Error(f"device {name}: only {torch.cuda.device_count()} GPUs visible")
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device("cpu")
