"""Exported-runtime inference for an SSD (ONNX Runtime, OpenVINO): exported once per
(checkpoint, input size) into the cache, checked against eager PyTorch at export time (a file
that disagrees is deleted, never used)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from mbv1.errors import MBV1Error

EXPORT_ATOL = 1e-3


def cache_path(checkpoint: Path, input_size: int) -> Path:
    from mbv1.assets import cache_dir

    st = Path(checkpoint).stat()
    key = hashlib.sha256(f"{Path(checkpoint).resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir() / "onnx" / f"{Path(checkpoint).stem}-{input_size}-{key}.onnx"


class OnnxRunner:
    """Callable ``x [1,3,S,S] → (box_codes, class_logits)`` on ONNX Runtime (CPU or CUDA EP)
    or, with ``runtime="openvino"``, on OpenVINO's CPU plugin (fp32)."""

    def __init__(self, model: torch.nn.Module, input_size: int, checkpoint: Path,
                 threads: int | None = None, runtime: str = "onnxruntime"):
        from mbv1.export.onnx_file import export_onnx, openvino_from_onnx
        from mbv1.export.runtimes import OpenVinoRunner, OrtRunner

        self.device = next(model.parameters()).device
        path = onnx_path = cache_path(checkpoint, input_size)
        if runtime == "openvino":
            path = onnx_path.with_suffix(".xml")
        fresh = not path.exists()
        if not onnx_path.exists() and fresh:
            export_onnx(model.cpu(), input_size, ["box_codes", "class_logits"], onnx_path)
            model.to(self.device)
        if runtime == "openvino":
            if fresh:
                openvino_from_onnx(onnx_path, path)
            self.runner = OpenVinoRunner(path, threads)
        else:
            self.runner = OrtRunner(path, threads, cuda=self.device.type == "cuda")
        if fresh:
            self._check(model, input_size, path)

    def _check(self, model, input_size, path) -> None:
        x = torch.randn(1, 3, input_size, input_size, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            ref = [t.cpu().numpy() for t in model.cpu()(x)]
        model.to(self.device)
        got = self.runner(x.numpy())
        err = max(float(np.abs(a - b).max()) for a, b in zip(ref, got))
        if err > EXPORT_ATOL:
            path.unlink(missing_ok=True)
            path.with_suffix(".bin").unlink(missing_ok=True)
            raise MBV1Error(f"the {path.suffix} export disagrees with PyTorch (max abs diff "
                            f"{err:.2e}); use --backend eager")

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        codes, logits = self.runner(x.detach().cpu().numpy())
        return torch.from_numpy(codes).to(x.device), torch.from_numpy(logits).to(x.device)
