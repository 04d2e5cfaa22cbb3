"""int8 post-training quantization of an ONNX file by ONNX Runtime: static, QDQ format,
uint8 activations, int8 per-channel weights, calibrated (MinMax) on real model inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

__all__ = ["quantize_int8"]


def quantize_int8(fp32: Path, out: Path, inputs: list[torch.Tensor]) -> Path:
    """Quantize ``fp32`` into ``out`` (written atomically) with ``inputs`` as calibration."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"images": x.numpy().astype(np.float32)} for x in inputs])

        def get_next(self):
            return next(self.items, None)

    prepared = out.with_name(f".{out.stem}.pre.onnx")
    tmp = out.with_name(f".{out.stem}.tmp.onnx")
    try:
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(tmp), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
        tmp.replace(out)
    finally:
        prepared.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return out
