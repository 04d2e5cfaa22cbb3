"""A module as an ONNX file (input ``images`` of ``[1, 3, S, S]`` or any shape, fixed or dynamic
batch, opset 17) and that file as an OpenVINO IR, written atomically. Used by ``mbv1 export``
and by the exported-runtime backends (:mod:`mbv1.runtimes.cached`)."""

from __future__ import annotations

from pathlib import Path

import torch


def export_onnx(module: torch.nn.Module, input_size: int | tuple[int, int, int],
                outputs: list[str], path: Path, batch: int | None = 1) -> Path:
    """``module`` (eval, CPU) with an input named ``images`` of ``[batch, 3, S, S]``
    (``input_size`` S) or ``[batch, C, H, W]`` (a shape) → ONNX; ``batch=None``: a dynamic
    batch axis."""
    from mbv1.checkpoint import atomic_write

    shape = (3, input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    x = torch.zeros(batch or 2, *shape)
    dynamic = ({n: {0: "batch"} for n in ["images", *outputs]} if batch is None else None)

    def write(tmp):
        import warnings

        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on shape arithmetic (static here)
            torch.onnx.export(module.eval().cpu(), (x,), tmp, input_names=["images"],
                              output_names=outputs, opset_version=17, dynamo=False,
                              dynamic_axes=dynamic)

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
