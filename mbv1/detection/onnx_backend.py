"""ONNX Runtime inference for an SSD: export once per (checkpoint, input size), cached, and
checked against eager PyTorch at export time."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from mbv1.errors import MBV1Error

EXPORT_ATOL = 1e-3


def export_onnx(model: torch.nn.Module, input_size: int, path: Path) -> Path:
    """Export ``model`` (eval, BN folded) with a fixed ``[1, 3, S, S]`` input to ``path``
    atomically; outputs ``box_codes [1, A, 4]`` and ``class_logits [1, A, C+1]``."""
    from mbv1.checkpoint import atomic_write

    model = model.eval().cpu()
    x = torch.zeros(1, 3, input_size, input_size)

    def write(tmp):
        with torch.no_grad():
            torch.onnx.export(model, (x,), tmp, input_names=["images"],
                              output_names=["box_codes", "class_logits"], opset_version=17,
                              dynamo=False)

    return atomic_write(path, write)


def cache_path(checkpoint: Path, input_size: int) -> Path:
    from mbv1.assets import cache_dir

    st = Path(checkpoint).stat()
    key = hashlib.sha256(f"{Path(checkpoint).resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir() / "onnx" / f"{Path(checkpoint).stem}-{input_size}-{key}.onnx"


class OnnxRunner:
    """Callable ``x [1,3,S,S] → (box_codes, class_logits)`` on ONNX Runtime (CPU or CUDA EP)."""

    def __init__(self, model: torch.nn.Module, input_size: int, checkpoint: Path,
                 threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:  # pragma: no cover - a declared dependency
            raise MBV1Error("--backend onnxruntime needs the onnxruntime package: pip install onnxruntime") from None
        self.device = next(model.parameters()).device
        path = cache_path(checkpoint, input_size)
        fresh = not path.exists()
        if fresh:
            export_onnx(model, input_size, path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
        # Spinning threads steal the cores that decoding and NMS need (environment.md: ~25%).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(path), opts, providers=providers)
        if fresh:
            self._check(model, input_size, path)

    def _check(self, model, input_size, path) -> None:
        x = torch.randn(1, 3, input_size, input_size, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            ref = [t.cpu().numpy() for t in model.cpu()(x)]
        model.to(self.device)
        got = self.session.run(None, {"images": x.numpy()})
        err = max(float(np.abs(a - b).max()) for a, b in zip(ref, got))
        if err > EXPORT_ATOL:
            path.unlink(missing_ok=True)
            raise MBV1Error(f"ONNX export disagrees with PyTorch (max abs diff {err:.2e}); use --backend eager")

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        codes, logits = self.session.run(None, {"images": x.detach().cpu().numpy()})
        return torch.from_numpy(codes).to(x.device), torch.from_numpy(logits).to(x.device)
