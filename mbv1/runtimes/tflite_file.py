"""A module as a TFLite (LiteRT) flatbuffer, converted by Google's maintained PyTorch → LiteRT
converter (``litert-torch``), written atomically. The file keeps PyTorch's NCHW input layout
(the converter inserts the transposes); run it with ``ai_edge_litert``'s interpreter.

The converter runs in a child process (``python -m mbv1.runtimes.tflite_file``): its native
TensorFlow code was seen to crash the process now and then (about one full test run in three
here, in the face detector's conversion), and a crash there must not take the caller with it.
A child that dies by a signal is run once more; a second death, or a conversion error, is one
:class:`MBV1Error` line.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import torch

from mbv1.errors import MBV1Error

ATTEMPTS = 2  # a conversion killed by a signal is tried once more


def export_tflite(module: torch.nn.Module, input_size: int, path: Path) -> Path:
    """``module`` (eval, CPU) with a fixed ``[1, 3, S, S]`` input → ``path`` (.tflite)."""
    import importlib.util

    if importlib.util.find_spec("litert_torch") is None:
        raise MBV1Error("--format tflite needs litert-torch (in requirements.lock: `make setup`)")
    path = Path(path)
    local = sorted({type(m).__qualname__ for m in module.modules() if type(m).__module__ == "__main__"})
    if local:  # the converting child process could not unpickle them
        raise MBV1Error(f"--format tflite converts in a child process, which cannot import "
                        f"{', '.join(local)} from your __main__ script: define it in a module")
    with tempfile.TemporaryDirectory(prefix="mbv1-tflite-") as tmp:
        src = Path(tmp) / "module.pt"
        torch.save(module.eval().cpu(), src)  # the whole module: the child rebuilds nothing
        for attempt in range(1, ATTEMPTS + 1):
            r = subprocess.run([sys.executable, "-m", "mbv1.runtimes.tflite_file", str(src),
                                str(int(input_size)), str(path)], capture_output=True, text=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
            if r.returncode == 0 and path.exists():
                return path
            if r.returncode > 0:
                lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
                raise MBV1Error(lines[-1] if lines else f"litert-torch exited with {r.returncode}")
            if attempt == ATTEMPTS:
                name = signal.Signals(-r.returncode).name if r.returncode < 0 else r.returncode
                raise MBV1Error(f"litert-torch crashed converting this model ({name}, "
                                f"{ATTEMPTS} tries); export onnx or openvino instead")
    raise AssertionError("unreachable")


def _convert(module: torch.nn.Module, input_size: int, path: Path) -> Path:
    """The conversion itself (in the child process)."""
    from mbv1.checkpoint import atomic_write

    quiet_converter()
    import litert_torch

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


def main(argv: list[str]) -> int:
    src, size, out = argv
    try:
        module = torch.load(src, weights_only=False)  # our own temporary file, just written
        _convert(module, int(size), Path(out))
    except MBV1Error as e:
        print(str(e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
