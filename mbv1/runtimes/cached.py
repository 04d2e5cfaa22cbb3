"""A model on the fastest exported runtime, for inference: exported once per (model, input
shape) into the cache, checked against eager PyTorch when written (a file that disagrees is
deleted, never used), then run by ONNX Runtime or OpenVINO. Behind ``--backend`` of
``mbv1 detect``, ``faces``, ``verify``, ``classify`` and ``geolocate``.

``auto`` (the default) takes, on the CPU, the first runtime of :data:`AUTO_ORDER` that is
installed and passes its check, else eager PyTorch with a one-line note; on CUDA it is eager
PyTorch (the exported runtimes here are CPU builds).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mbv1.errors import MBV1Error

__all__ = ["AUTO_ORDER", "BACKENDS", "ExportedModule", "FastForward", "TupleOutputs", "file_key", "input_shape",
           "runtime_for"]

BACKENDS = ("auto", "eager", "onnxruntime", "openvino")
# auto: the fastest runtime measured here (benchmarks/runtimes.py, 2 threads: the face model
# OpenVINO 51.8 ms, ONNX Runtime 91.2, eager 96.6; MobileNetV1 α=1 batch 1: 10.3 / 13.8 / 21.6).
AUTO_ORDER = ("openvino", "onnxruntime")
EXPORT_RTOL = 1e-3  # max abs diff ≤ EXPORT_RTOL · max(1, max |output|) (measured ~1e-5)


def export_cache() -> Path:
    """Where exported files are cached: ``$MBV1_EXPORT_CACHE``, else ``<cache>/onnx``."""
    import os

    from mbv1.assets import cache_dir

    env = os.environ.get("MBV1_EXPORT_CACHE")
    return Path(env).expanduser() if env else cache_dir() / "onnx"


def file_key(path: str | Path) -> str:
    """A cache key that changes when the file does: resolved path, size, mtime (a run folder:
    of its ``best.pt``, else ``last.pt``, the checkpoint it loads)."""
    path = Path(path)
    if path.is_dir():
        path = next((path / n for n in ("best.pt", "last.pt") if (path / n).exists()), path)
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def input_shape(transform: Callable) -> tuple[int, int, int]:
    """``(3, H, W)`` a fixed-size evaluation transform gives (``transform(image, None)``)."""
    h, w = transform(np.zeros((97, 131, 3), np.uint8), None).shape[:2]
    return (3, int(h), int(w))


class ExportedModule:
    """``module`` (eval, CPU, BatchNorm folded by the caller) as an exported file run by
    ``runtime``: ``self(x: float32 [N, C, H, W] tensor) → tuple of output tensors`` on ``x``'s
    device. ``batch=None`` exports a dynamic batch axis (classifiers, face crops), else the
    batch is fixed (the detector: one frame).

    Raises:
        MBV1Error: the runtime is missing, cannot load the file, or the file disagrees with
            PyTorch.
    """

    def __init__(self, module: torch.nn.Module, shape: tuple[int, int, int], outputs: list[str],
                 name: str, key: str, runtime: str = "openvino", batch: int | None = 1,
                 threads: int | None = None):
        if runtime not in AUTO_ORDER:
            raise MBV1Error(f"unknown runtime {runtime!r}: use one of {', '.join(AUTO_ORDER)}")
        self.runtime, self.outputs = runtime, outputs
        digest = hashlib.sha256(f"{key}:{shape}:{batch}:{outputs}".encode()).hexdigest()[:16]
        onnx_path = export_cache() / f"{name}-{'x'.join(map(str, shape))}-{digest}.onnx"
        path = onnx_path.with_suffix(".xml") if runtime == "openvino" else onnx_path
        try:
            self._load(module, shape, batch, onnx_path, path, threads)
        except MBV1Error:
            if not path.exists():
                raise
            # a cached file that no longer loads (truncated, another runtime version): anew
            for p in (onnx_path, path, path.with_suffix(".bin"),
                      path.with_name(path.name + ".checked")):
                p.unlink(missing_ok=True)
            self._load(module, shape, batch, onnx_path, path, threads)

    def _load(self, module, shape, batch, onnx_path: Path, path: Path, threads) -> None:
        from mbv1.runtimes.onnx_file import export_onnx, openvino_from_onnx
        from mbv1.runtimes.runners import OpenVinoRunner, OrtRunner

        if self.runtime == "openvino":
            import openvino  # noqa: F401  (ImportError: the runtime is not installed)
        else:
            import onnxruntime  # noqa: F401
        if not path.exists() and not onnx_path.exists():
            export_onnx(module, shape, self.outputs, onnx_path, batch=batch)
        if self.runtime == "openvino":
            if not path.exists():
                openvino_from_onnx(onnx_path, path)
            self.runner: Callable = OpenVinoRunner(path, threads)
        else:
            self.runner = OrtRunner(path, threads)
        checked = path.with_name(path.name + ".checked")  # this runtime passed on this file
        if not checked.exists():
            err = self._check(module, shape, batch)
            if err is not None:
                for p in (onnx_path, path, path.with_suffix(".bin")):
                    p.unlink(missing_ok=True)
                raise MBV1Error(f"the {self.runtime} export disagrees with PyTorch (max abs "
                                f"diff {err:.2e}); use --backend eager")
            checked.write_text("parity checked against PyTorch\n")

    def _check(self, module, shape, batch) -> float | None:
        """None when the runtime reproduces PyTorch on a seeded input, else the max abs diff."""
        g = torch.Generator().manual_seed(0)
        x = torch.randn(batch or 2, *shape, generator=g)
        with torch.no_grad():
            ref = _as_tuple(module.eval()(x))
        got = self.runner(x.numpy())
        err = max(float(np.abs(r.numpy() - o).max()) for r, o in zip(ref, got))
        scale = max(1.0, max(float(r.abs().max()) for r in ref))
        return None if err <= EXPORT_RTOL * scale else err

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outs = self.runner(x.detach().to("cpu", torch.float32).numpy())
        return tuple(torch.from_numpy(np.asarray(o)).to(x.device) for o in outs)


class AsTuple(torch.nn.Module):
    """A module whose forward returns a tensor or a tuple, as a tuple (ONNX outputs)."""

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.m = module

    def forward(self, x):
        return _as_tuple(self.m(x))


class TupleOutputs(torch.nn.Module):
    """A module with dict outputs as a tuple in a fixed key order (ONNX has named outputs)."""

    def __init__(self, module: torch.nn.Module, keys: list[str], method: str = "forward"):
        super().__init__()
        self.module, self.keys, self.method = module, list(keys), method

    def forward(self, x):
        out = getattr(self.module, self.method)(x)
        return tuple(out[k] for k in self.keys)


def _as_tuple(out) -> tuple[torch.Tensor, ...]:
    return out if isinstance(out, tuple) else (out,)


def runtime_for(module: torch.nn.Module, shape: tuple[int, int, int], outputs: list[str],
                name: str, key: str, backend: str = "auto", device: str | torch.device = "cpu",
                batch: int | None = 1, warn: Callable[[str], None] | None = None
                ) -> ExportedModule | None:
    """The :class:`ExportedModule` ``backend`` asks for, or ``None`` for eager PyTorch (asked,
    on CUDA, or ``auto`` with no runtime that passed; then ``warn`` gets one line).

    ``module`` is exported from the CPU and left where it was.
    """
    if backend not in BACKENDS:
        raise MBV1Error(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    device = torch.device(device)
    if backend == "eager":
        return None
    if device.type != "cpu":
        if backend == "auto":
            return None
        raise MBV1Error(f"--backend {backend} runs on the CPU here; on {device} use "
                        "--backend eager (PyTorch) or auto")
    tried = []
    for runtime in AUTO_ORDER if backend == "auto" else (backend,):
        try:
            return ExportedModule(module, shape, outputs, name, key, runtime, batch)
        except ImportError as e:
            if backend != "auto":
                raise MBV1Error(f"--backend {backend}: {e.name or runtime} is not installed "
                                "(it is in requirements.lock: `make setup`)") from None
            tried.append(f"{runtime}: not installed")
        except MBV1Error as e:
            if backend != "auto":
                raise
            tried.append(f"{runtime}: {e}")
    if warn:
        warn(f"--backend auto: no exported runtime passed for {name} (" + "; ".join(tried)
             + "); running eager PyTorch")
    return None


class FastForward:
    """``module``'s forward for inference on the backend ``backend`` resolves to (eager PyTorch
    when :func:`runtime_for` gives none): ``self(x [N, C, H, W]) → tuple of outputs`` (the
    ``outputs`` of ``module``, which returns a tensor or a tuple), any batch size.

    Attributes:
        backend: ``openvino``, ``onnxruntime`` or ``eager``.
    """

    def __init__(self, module: torch.nn.Module, shape: tuple[int, int, int], outputs: list[str],
                 name: str, key: str, backend: str = "auto", device: str | torch.device = "cpu",
                 warn: Callable[[str], None] | None = None):
        self.module = module.eval()
        self.exported = runtime_for(module, shape, outputs, name, key, backend, device,
                                    batch=None, warn=warn)
        self.backend = self.exported.runtime if self.exported else "eager"

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.exported is not None:
            return self.exported(x)
        with torch.inference_mode():
            return _as_tuple(self.module(x))
