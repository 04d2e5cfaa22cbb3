"""``mbv1 export``: a checkpoint (default: the real COCO detector) as ONNX, int8, OpenVINO
(fp32 or int8), TFLite."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mbv1.cli import common


class Format(str, Enum):
    onnx = "onnx"
    int8 = "int8"
    openvino_int8 = "openvino-int8"
    openvino = "openvino"
    tflite = "tflite"
    tflite_int8 = "tflite-int8"


def export(
    checkpoint: Annotated[Path | None, typer.Argument(help="An mbv1 checkpoint or run folder (default: the real COCO detector, SSDLite-MobileNetV2).")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="onnx (fp32), int8 (ONNX Runtime static QDQ, calibrated on real frames), openvino (IR, fp32), openvino-int8 (IR quantized by NNCF on the same frames), tflite (LiteRT fp32), tflite-int8 (LiteRT fully integer, ai-edge-quantizer on the same frames).")] = Format.onnx,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("runs/export"),
    calib: Annotated[Path | None, typer.Option(help="Images/videos to calibrate int8 on and check every format with (default: the embedded photos and videos).")] = None,
    resolution: Annotated[int | None, typer.Option(min=32, help="Input side (default: the checkpoint's).")] = None,
    min_agreement: Annotated[float, typer.Option(min=0.0, max=1.0, help="int8 accuracy gate: the share of fp32's detections / top-1 classes it must reproduce on held-out frames.")] = 0.99,
):
    """Export a model with its preprocessing and labels beside it, checked by its own runtime."""
    from mbv1.cli.detect import resolve_weights
    from mbv1.export import export as run_export

    ckpt = resolve_weights(checkpoint)
    res = run_export(ckpt, fmt.value, out, calib, resolution, min_agreement)
    c = common.console()
    c.print(f"[green]wrote[/] {res.path} ({res.format})")
    for f in res.files[1:]:
        c.print(f"  beside it: {f}")
    for line in res.lines:
        c.print(f"  {line}")
