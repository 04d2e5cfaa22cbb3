"""Device names as users type them (``auto``, ``cpu``, ``cuda``, ``cuda:N``) → torch devices,
with one-line errors; shared by training, evaluation and every predictor.

``auto`` (every command's default) is CUDA when PyTorch sees a GPU, else the CPU; the choice
is printed once per process on stderr (``device: cuda:0 (NVIDIA H100 ...), chosen by
--device auto``).
"""

from __future__ import annotations

import os
import sys

import torch

from mbv1.errors import MBV1Error

_announced = False


def auto_device() -> str:
    """What ``auto`` means here: ``cuda`` when PyTorch sees a CUDA GPU, else ``cpu``; says
    which once per process (rank 0 only under torchrun)."""
    name = "cuda" if torch.cuda.is_available() else "cpu"
    announce(name)
    return name


def announce(name: str) -> None:
    global _announced
    if _announced or int(os.environ.get("RANK", "0")) != 0:
        return
    _announced = True
    if name == "cuda":
        index = torch.cuda.current_device()
        what = f"cuda:{index} ({torch.cuda.get_device_name(index)}), chosen by --device auto"
    else:
        what = "cpu, chosen by --device auto (PyTorch sees no CUDA GPU)"
    print(f"device: {what}", file=sys.stderr, flush=True)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` (this process's GPU) or ``cuda:N``."""
    if name == "auto":
        name = auto_device()
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


def loader_workers(asked: int) -> int:
    """Data-loader processes for ``asked``: at most the cores this process may use (PyTorch
    warns, and workers only contend, beyond that: the default 4 on a 2-core machine)."""
    return max(0, min(int(asked), len(os.sched_getaffinity(0))))
