"""A module as an ONNX file (fixed ``[1, 3, S, S]`` input named ``images``, opset 17) and
that file as an OpenVINO IR, written atomically. Used by ``mbv1 export`` and by the detector's
exported-runtime backends."""

from __future__ import annotations

from pathlib import Path

import torch


def export_onnx(module: torch.nn.Module, input_size: int, outputs: list[str], path: Path) -> Path:
    """``module`` (eval, CPU) with a fixed ``[1, 3, S, S]`` input named ``images`` → ONNX."""
    from mbv1.checkpoint import atomic_write

    x = torch.zeros(1, 3, input_size, input_size)

    def write(tmp):
        import warnings

        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on shape arithmetic (static here)
            torch.onnx.export(module.eval().cpu(), (x,), tmp, input_names=["images"],
                              output_names=outputs, opset_version=17, dynamo=False)

    return atomic_write(path, write)


def openvino_from_onnx(onnx_path: Path, xml: Path) -> Path:
    """An OpenVINO IR (``xml`` + ``.bin``, fp32 weights) converted from an ONNX file."""
    import openvino as ov

    model = ov.convert_model(str(onnx_path))
    tmp = xml.with_name(f".{xml.stem}.tmp.xml")
    ov.save_model(model, str(tmp), compress_to_fp16=False)
    tmp.with_suffix(".bin").replace(xml.with_suffix(".bin"))
    tmp.replace(xml)
    return xml
