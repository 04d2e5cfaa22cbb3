"""One seed for everything random: Python, NumPy, torch, data-loader workers, augmentation.

Data randomness is a pure function of ``(seed, epoch, sample index)`` (:func:`sample_seed`):
an image gets the same crop whatever the number of workers or processes, and a run resumed in
the middle of an epoch sees exactly the batches it would have seen. Model randomness (dropout)
comes from the global torch generator, whose state is saved in every checkpoint.
"""

from __future__ import annotations

import os
import random
import signal

import numpy as np
import torch


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 32-bit seed for one sample's augmentation, independent across (seed, epoch, index)."""
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, epoch, index]).generate_state(1)[0])


def seed_everything(seed: int, rank: int = 0) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA); ranks get distinct streams (dropout masks
    of different replicas should differ, as for different images of one batch)."""
    s = (seed + 1_000_003 * rank) & 0xFFFFFFFF
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)  # also seeds every CUDA device


def set_deterministic(enabled: bool) -> None:
    """``--deterministic``: deterministic algorithms everywhere (errors on ops without one)."""
    if enabled:
        # cuBLAS needs this before its first call to be deterministic (PyTorch docs).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # warn_only: a few CUDA kernels have no deterministic version (e.g. the backward of
    # AdaptiveAvgPool2d); they warn by name instead of stopping the run.
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled


def worker_init_fn(worker_id: int) -> None:
    """Seed a data-loader worker from its torch seed (the loader derives it from its own
    generator, which the engine reseeds from (seed, epoch) every epoch), and leave Ctrl-C and
    SIGTERM handling to the main process, which finishes its step and saves before the workers
    stop."""
    s = torch.initial_seed() & 0xFFFFFFFF
    random.seed(s)
    np.random.seed(s)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's finish-the-step handler


def rng_state() -> dict:
    """The global RNG states as checkpoint-safe values (tensors, ints, lists)."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached": float(cached)}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_tuplify(state["python"]))
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _tuplify(x):
    """random.setstate needs tuples; a checkpoint round trip may give lists."""
    return tuple(_tuplify(v) for v in x) if isinstance(x, (list, tuple)) else x
