"""A model on the fastest exported runtime, for inference: exported once per (model, input
shape) into the cache, checked against eager PyTorch when written (a file that disagrees is
deleted, never used), then run by ONNX Runtime or OpenVINO. Behind ``--backend`` of
``mbv1 detect``, ``faces``, ``verify``, ``classify`` and ``geolocate``.

``auto`` (the default) takes, on the CPU, the first runtime of :data:`AUTO_ORDER` that is
installed and passes its check, else eager PyTorch with a one-line note; on CUDA it is eager
PyTorch (the exported runtimes here are CPU builds).

With an :class:`Int8Plan` (the detectors and the classifier give one) OpenVINO also quantizes
the model to int8 (NNCF, calibrated on the plan's real inputs) once, runs the plan's accuracy
gate on held-out frames and keeps the verdict beside the file (``*.gate.json``):
``precision="auto"`` runs int8 when the gate passes, fp32 otherwise (with one line naming the
figure).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mbv1.errors import MBV1Error

__all__ = ["AUTO_ORDER", "BACKENDS", "PRECISIONS", "ExportedModule", "FastForward", "Int8Plan",
           "TupleOutputs", "check_precision", "file_key", "input_shape", "runtime_for"]

BACKENDS = ("auto", "eager", "onnxruntime", "openvino")
# auto: the fastest runtime measured here (benchmarks/runtimes.py, 2 threads: the face model
# OpenVINO 51.8 ms, ONNX Runtime 91.2, eager 96.6; MobileNetV1 α=1 batch 1: 10.3 / 13.8 / 21.6).
AUTO_ORDER = ("openvino", "onnxruntime")
EXPORT_RTOL = 1e-3  # max abs diff ≤ EXPORT_RTOL · max(1, max |output|) (measured ~1e-5)
PRECISIONS = ("auto", "fp32", "int8")


@dataclass
class Int8Plan:
    """How to make and judge an int8 model: ``calibration()`` gives real model inputs,
    ``gate(run)`` runs ``run`` (numpy in, numpy outputs) on held-out frames and returns
    ``(agreed, total)`` against fp32 (``what``: of what, for the verdict's line); ``key``
    names the calibration set (part of the int8 file's cache key), ``gate_key`` what else the
    verdict depends on (e.g. the score threshold); ``precision``: ``auto`` (int8 when
    ``agreed / total >= min_agreement``), ``int8`` (always) or ``fp32`` (never)."""

    calibration: Callable[[], list[torch.Tensor]]
    gate: Callable[[Callable], tuple[int, int]]
    key: str
    gate_key: str = ""
    precision: str = "auto"
    min_agreement: float = 0.99
    warn: Callable[[str], None] | None = None
    what: str = "fp32's detections on held-out frames"


def check_precision(precision: str, backend: str, device: torch.device) -> None:
    """Raise on a ``--precision`` that is unknown, or ``int8`` where it cannot run."""
    if precision not in PRECISIONS:
        raise MBV1Error(f"--precision {precision}: use one of {', '.join(PRECISIONS)}")
    if precision == "int8" and (backend not in ("auto", "openvino") or device.type != "cpu"):
        raise MBV1Error("--precision int8 runs on OpenVINO on the CPU: use --backend "
                        "openvino (or auto) and --device cpu")


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
                 threads: int | None = None, int8: Int8Plan | None = None):
        if runtime not in AUTO_ORDER:
            raise MBV1Error(f"unknown runtime {runtime!r}: use one of {', '.join(AUTO_ORDER)}")
        self.runtime, self.outputs = runtime, outputs
        self.precision, self.gate = "fp32", None
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
        if int8 is not None and int8.precision != "fp32" and runtime == "openvino":
            try:
                self._int8(module, shape, batch, onnx_path, path, threads, int8)
            except (ImportError, RuntimeError, MBV1Error) as e:  # fp32 still runs
                for p in path.parent.glob(f"{path.stem}-int8-*"):  # made anew next time
                    p.unlink(missing_ok=True)
                if int8.precision == "int8":
                    raise MBV1Error(f"--precision int8: quantizing {name} failed: {e}") from None
                if int8.warn:
                    int8.warn(f"int8 not taken: quantizing {name} failed ({e}); running fp32")

    def _int8(self, module, shape, batch, onnx_path: Path, path: Path, threads,
              plan: Int8Plan) -> None:
        """Quantize (once), gate (once, the verdict kept in ``*.gate.json``) and run int8 when
        the plan's precision and the gate say so."""
        from mbv1.runtimes.quantize import quantize_openvino
        from mbv1.runtimes.runners import OpenVinoRunner

        tag = hashlib.sha256(plan.key.encode()).hexdigest()[:8]
        q = path.with_name(f"{path.stem}-int8-{tag}.xml")
        gate_tag = hashlib.sha256(f"{plan.key}:{plan.gate_key}".encode()).hexdigest()[:8]
        record = q.with_name(f"{q.stem}-{gate_tag}.gate.json")
        gate = json.loads(record.read_text()) if record.exists() else None
        if gate is None or (not q.exists() and (gate["passed"] or plan.precision == "int8")):
            if not q.exists():
                if not onnx_path.exists():
                    from mbv1.runtimes.onnx_file import export_onnx

                    export_onnx(module, shape, self.outputs, onnx_path, batch=batch)
                quantize_openvino(onnx_path, q, plan.calibration())
            agreed, total = plan.gate(OpenVinoRunner(q, threads))
            agreement = agreed / total if total else 1.0
            gate = {"agreed": agreed, "total": total, "agreement": agreement,
                    "min_agreement": plan.min_agreement,
                    "passed": agreement >= plan.min_agreement, "calibration": plan.key}
            from mbv1.checkpoint import atomic_write

            atomic_write(record, json.dumps(gate, indent=1))
        self.gate = gate
        figure = (f"{100 * gate['agreement']:.1f}% ({gate['agreed']}/{gate['total']}) of "
                  f"{plan.what}, gate {100 * gate['min_agreement']:.0f}%")
        if gate["passed"] or plan.precision == "int8":
            self.runner, self.precision = OpenVinoRunner(q, threads), "int8"
            if plan.warn and not gate["passed"]:
                plan.warn(f"--precision int8: int8 agrees on {figure}, under the gate")
        elif plan.warn:
            plan.warn(f"int8 not taken: it agrees on {figure}; running fp32 "
                      "(--precision int8 forces it)")

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
                batch: int | None = 1, warn: Callable[[str], None] | None = None,
                int8: Int8Plan | None = None) -> ExportedModule | None:
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
            return ExportedModule(module, shape, outputs, name, key, runtime, batch, int8=int8)
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
        precision: ``int8`` when ``int8`` (an :class:`Int8Plan`) was taken, else ``fp32``.
        gate: the int8 gate's verdict, when there was one.
    """

    def __init__(self, module: torch.nn.Module, shape: tuple[int, int, int], outputs: list[str],
                 name: str, key: str, backend: str = "auto", device: str | torch.device = "cpu",
                 warn: Callable[[str], None] | None = None, int8: Int8Plan | None = None):
        self.module = module.eval()
        self.exported = runtime_for(module, shape, outputs, name, key, backend, device,
                                    batch=None, warn=warn, int8=int8)
        self.backend = self.exported.runtime if self.exported else "eager"
        self.precision = self.exported.precision if self.exported else "fp32"
        self.gate = self.exported.gate if self.exported else None

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.exported is not None:
            return self.exported(x)
        with torch.inference_mode():
            return _as_tuple(self.module(x))
