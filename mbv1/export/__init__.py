"""``mbv1 export``: a checkpoint as a file other programs run, checked by its own runtime.

Formats: ``onnx`` (fp32, opset 17), ``int8`` (static post-training quantization, QDQ: uint8
activations, int8 per-channel weights, calibrated on real frames by ONNX Runtime), ``openvino``
(IR converted by OpenVINO from the ONNX file, fp32), ``openvino-int8`` (that IR quantized by
NNCF on the same calibration frames, run int8 by OpenVINO), ``tflite`` (fp32 LiteRT flatbuffer
converted by litert-torch, run by the LiteRT interpreter) and ``tflite-int8`` (that flatbuffer
fully integer, int8 input and outputs, quantized by ai-edge-quantizer on the same calibration
frames). Beside every file: a JSON
sidecar with the preprocessing, labels and decoding another program needs, and (detectors) the
anchors. At export the file is run by its own runtime on real frames and compared with the
PyTorch model: max abs diff of the outputs and, for detectors, whether it finds the same
objects; an int8 file must pass an accuracy gate or it is refused with the figure.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mbv1.detection.agreement import MATCH_IOU, MATCH_SCORE, match_detections
from mbv1.errors import MBV1Error
from mbv1.export.spec import ExportSpec, export_spec
from mbv1.runtimes.onnx_file import export_onnx, openvino_from_onnx

__all__ = ["FORMATS", "ExportResult", "check", "export", "export_onnx"]

FORMATS = ("onnx", "int8", "openvino", "openvino-int8", "tflite", "tflite-int8")
INT8 = ("int8", "openvino-int8", "tflite-int8")
MIN_AGREEMENT = 0.99  # the int8 gate: share of fp32's detections / classes reproduced
# how each int8 format is made (written into its sidecar); every layer is quantized (none kept
# in fp32: on the face SSD all-int8 passes the gate at 100%, and on the COCO SSDLite no subset
# of layers left fp32 passed it, docs/performance.md), calibrated on up to max_inputs inputs
QUANTIZATION = {
    "int8": {"tool": "ONNX Runtime quantize_static", "format": "QDQ", "calibration": "MinMax",
             "weights": "int8, per channel, symmetric",
             "activations": "uint8, per tensor, asymmetric", "max_inputs": 128},
    "openvino-int8": {"tool": "NNCF post-training quantization", "preset": "mixed",
                      "bias_correction": "fast", "weights": "int8, per channel, symmetric",
                      "activations": "per tensor, asymmetric", "max_inputs": 300},
    "tflite-int8": {"tool": "ai-edge-quantizer", "recipe": "default_a8w8", "calibration": "min/max",
                    "weights": "int8, per channel, symmetric",
                    "activations": "int8, per tensor, asymmetric",
                    "input_output": "int8, scales and zero points in the file",
                    "dead_channels": "one weight of 1e-4 (with_live_channels)", "max_inputs": 128},
}
FP32_ATOL = 1e-3  # outputs of an fp32 export against PyTorch (measured ~1e-5)


@dataclass
class ExportResult:
    format: str
    path: Path
    files: list[Path]
    parity: dict
    lines: list[str] = field(default_factory=list)


def export(checkpoint: str | Path, fmt: str, out_dir: str | Path = "runs/export",
           calib: str | Path | None = None, resolution: int | None = None,
           min_agreement: float = MIN_AGREEMENT, threads: int | None = None) -> ExportResult:
    """Export ``checkpoint`` as ``fmt`` into ``out_dir`` and check it (module docstring).

    Raises:
        MBV1Error: unknown format; the exported file disagrees with PyTorch; an int8 file
            below ``min_agreement`` (the file is removed, the figure named).
    """
    if fmt not in FORMATS:
        raise MBV1Error(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    from mbv1.datasets.calibration import real_frames

    spec = export_spec(checkpoint, resolution)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{Path(checkpoint).stem}-{spec.input_size}"
    frames = real_frames(calib)
    path, files = _write(spec, fmt, out_dir, stem, frames)
    parity, lines = check(spec, path, frames.gate, threads)
    lines.insert(0, f"parity on {parity['inputs']} inputs from {len(frames.gate)} frames of "
                    f"{frames.source}")
    if fmt in INT8 and parity["agreement"] < min_agreement:
        for f in files:
            f.unlink(missing_ok=True)
        raise MBV1Error(f"int8 refused: it agrees with fp32 on {100 * parity['agreement']:.1f}% "
                        f"({parity['agreed']}/{parity['total']}), under the gate of "
                        f"{100 * min_agreement:.0f}%; use --format onnx (or --min-agreement)")
    if fmt in INT8:
        lines.append(f"int8 gate: {100 * parity['agreement']:.1f}% agreement on held-out frames "
                     f">= {100 * min_agreement:.0f}%: passed")
    if fmt not in INT8 and parity["max_abs_diff"] > FP32_ATOL:
        for f in files:
            f.unlink(missing_ok=True)
        raise MBV1Error(f"the {fmt} file disagrees with PyTorch (max abs diff "
                        f"{parity['max_abs_diff']:.2e} > {FP32_ATOL:g}): not written")
    from mbv1.checkpoint import atomic_write

    for name, arr in spec.arrays.items():
        p = out_dir / f"{stem}.{name}.npy"
        buf = io.BytesIO()
        np.save(buf, arr)
        files.append(atomic_write(p, buf.getvalue()))
    side = {**spec.sidecar, "format": fmt, "file": path.name,
            "outputs": spec.outputs if "outputs" not in spec.sidecar else spec.sidecar["outputs"],
            "output_order": spec.outputs, "checkpoint": str(checkpoint), "parity": parity,
            "arrays": {n: f"{stem}.{n}.npy" for n in spec.arrays}}
    if fmt in INT8:
        side["quantization"] = {**QUANTIZATION[fmt], "calibration_frames": frames.source,
                                "layers_kept_fp32": [], "min_agreement": min_agreement}
    sidecar = out_dir / f"{path.name}.json"
    files.append(atomic_write(sidecar, json.dumps(side, indent=1)))
    return ExportResult(fmt, path, files, parity, lines)


def _write(spec: ExportSpec, fmt: str, out_dir: Path, stem: str, frames
           ) -> tuple[Path, list[Path]]:
    """The file of ``fmt`` (and the files it consists of)."""
    if fmt == "tflite":
        from mbv1.runtimes.tflite_file import export_tflite

        path = export_tflite(spec.module, spec.input_size, out_dir / f"{stem}.tflite")
        return path, [path]
    if fmt == "tflite-int8":
        from mbv1.runtimes.quantize import quantize_tflite, with_live_channels
        from mbv1.runtimes.tflite_file import export_tflite

        fp32 = export_tflite(with_live_channels(spec.module), spec.input_size,
                             out_dir / f".{stem}.fp32.tflite")
        try:
            path = quantize_tflite(fp32, out_dir / f"{stem}.int8.tflite",
                                   _inputs(spec, frames.calibration,
                                           QUANTIZATION[fmt]["max_inputs"]))
        finally:
            fp32.unlink(missing_ok=True)  # a step here, not the product
        return path, [path]
    onnx_path = export_onnx(spec.module, spec.input_size, spec.outputs, out_dir / f"{stem}.onnx")
    if fmt == "int8":
        from mbv1.runtimes.quantize import quantize_int8

        path = quantize_int8(onnx_path, out_dir / f"{stem}.int8.onnx",
                             _inputs(spec, frames.calibration, QUANTIZATION[fmt]["max_inputs"]))
        onnx_path.unlink()  # the fp32 file is a step here, not the product
        return path, [path]
    if fmt == "openvino-int8":
        from mbv1.runtimes.quantize import quantize_openvino

        path = quantize_openvino(onnx_path, out_dir / f"{stem}.int8.xml",
                                 _inputs(spec, frames.calibration,
                                         QUANTIZATION[fmt]["max_inputs"]))
        onnx_path.unlink()
        return path, [path, path.with_suffix(".bin")]
    if fmt == "openvino":
        path = openvino_from_onnx(onnx_path, out_dir / f"{stem}.xml")
        onnx_path.unlink()
        return path, [path, path.with_suffix(".bin")]
    return onnx_path, [onnx_path]


def _inputs(spec: ExportSpec, frames, limit: int | None = None) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    for f in frames:
        out += spec.inputs(f)
        if limit and len(out) >= limit:
            break
    if not out:
        raise MBV1Error("no model inputs in the frames (a face student needs frames with faces)")
    return out[:limit] if limit else out


def check(spec: ExportSpec, path: Path, frames, threads: int | None = None
          ) -> tuple[dict, list[str]]:
    """Run ``path`` with its runtime and the PyTorch module on the inputs of ``frames``:
    ``({"max_abs_diff", "inputs", "agreement", "agreed", "total", ...}, report lines)``."""
    from mbv1.runtimes.runners import runner_for

    run = runner_for(path, threads)
    diff, agreed, total, inputs = 0.0, 0, 0, 0
    for rgb in frames:
        xs = spec.inputs(rgb)
        refs, gots = [], []
        for x in xs:
            with torch.no_grad():
                ref = [t.numpy() for t in spec.module(x)]
            got = run(x.numpy())
            diff = max(diff, max(float(np.abs(a - b).max()) for a, b in zip(ref, got)))
            refs.append(ref)
            gots.append(got)
            inputs += 1
        a, t = _agreement(spec, refs, gots, rgb.shape[:2])
        agreed, total = agreed + a, total + t
    parity = {"max_abs_diff": diff, "inputs": inputs, "agreed": agreed, "total": total,
              "agreement": agreed / total if total else 1.0}
    from mbv1.faces.agreement import RULE

    what = {"detector": f"same detections (IoU >= {MATCH_IOU}, score within {MATCH_SCORE})",
            "classifier": "same top-1 class", "faces": RULE}[spec.kind]
    lines = [f"max abs diff of the outputs vs PyTorch: {diff:.2e}",
             f"{what}: {agreed}/{total} ({100 * parity['agreement']:.1f}%)"]
    return parity, lines


def _agreement(spec: ExportSpec, refs, gots, frame_hw) -> tuple[int, int]:
    if spec.kind == "detector":
        (rb, rs), (gb, gs) = spec.decode(refs[0], frame_hw), spec.decode(gots[0], frame_hw)
        return match_detections(rb, rs, gb, gs), max(len(rs), len(gs))
    if spec.kind == "classifier":
        return sum(int(np.argmax(r[0]) == np.argmax(g[0])) for r, g in zip(refs, gots)), len(refs)
    from mbv1.faces.agreement import faces_agree

    return sum(int(faces_agree(spec.outputs, r, g)[0]) for r, g in zip(refs, gots)), len(refs)
