"""A module as a TFLite (LiteRT) flatbuffer, converted by Google's maintained PyTorch → LiteRT
converter (``litert-torch``), written atomically. The file keeps PyTorch's NCHW input layout
(the converter inserts the transposes); run it with ``ai_edge_litert``'s interpreter."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path

import torch

from mbv1.errors import MBV1Error


def export_tflite(module: torch.nn.Module, input_size: int, path: Path) -> Path:
    """``module`` (eval, CPU) with a fixed ``[1, 3, S, S]`` input → ``path`` (.tflite)."""
    from mbv1.checkpoint import atomic_write

    quiet_converter()
    try:
        import litert_torch
    except ImportError:
        raise MBV1Error("--format tflite needs litert-torch (in requirements.lock: `make setup`)"
                        ) from None
    x = torch.zeros(1, 3, input_size, input_size)
    # the converter prints a progress tree on stdout; the caller reports the result
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            edge = litert_torch.convert(module.eval().cpu(), (x,))
        except Exception as e:  # the converter raises many types from deep inside
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise MBV1Error(f"litert-torch cannot convert this model: {first[:200]}") from None

        def write(tmp):
            edge.export(str(tmp))

        return atomic_write(path, write)


def quiet_converter() -> None:
    """The converter's TensorFlow-side info lines and torch's deprecation notes off stderr."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
