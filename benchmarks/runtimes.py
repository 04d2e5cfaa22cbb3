"""Model time on every runtime mbv1 exports to, side by side in one run.

    .venv/bin/python benchmarks/runtimes.py [--iters N] [--threads T] [--only NAME ...]

Models: the real SSD-MobileNetV1 face model (512x512) and the real COCO SSDLite-MobileNetV2
(300x300; both on real frames, with the export's own parity
figures), SSD300 on an α=1 body with COCO's 91 classes (random weights: the paper's Table 13
row), and the MobileNetV1 classifier at α ∈ {1, 0.5, 0.25}, 224 px, batch 1 and 32. Each is
exported (ONNX fp32, OpenVINO fp32, int8 QDQ (ONNX Runtime) and OpenVINO int8 (NNCF) calibrated on
real frames, and at batch 1 TFLite fp32 and fully integer int8 (ai-edge-quantizer) on the LiteRT
interpreter) and timed against torch eager (BN folded, channels-last), interleaved round by round
so that machine noise hits all alike. Prints median ms, the ratio to eager and the share of this
machine's sgemm peak, measured in the same run (a 2048^3 matmul); beside each int8 time of the
two real detectors, its accuracy gate: the share of fp32's detections it reproduces on the
held-out frames (``mbv1 export``'s check).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def sgemm_peak_gflops(n: int = 2048, reps: int = 10) -> float:
    """The best of ``reps`` 2048^3 matmuls after two warm-up ones (GFLOP/s)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    return max(2 * n**3 / _timed(lambda: a @ b) / 1e9 for _ in range(reps))


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def models(frames) -> list[tuple[str, torch.nn.Module, int, int, list, object]]:
    """``(name, module, input side, batch, calibration inputs, export spec or None)``: the
    spec (:func:`mbv1.export.spec.export_spec`) of a real detector, for its int8 gate."""
    from mbv1.backbone import MobileNetV1, fuse_bn
    from mbv1.detection.coco_model import default_checkpoint as coco_checkpoint
    from mbv1.detection.face_model import default_checkpoint
    from mbv1.detection.preprocess import Preprocess
    from mbv1.detection.ssd import SSD, SSDConfig
    from mbv1.export.spec import export_spec
    from mbv1.runtimes.cached import AsTuple

    def calib(size, batch):
        pre = Preprocess(size)
        xs = [pre(f) for f in frames[:16 * batch]]
        return [torch.cat(xs[i:i + batch]) for i in range(0, len(xs) - batch + 1, batch)]

    torch.manual_seed(0)
    face = export_spec(default_checkpoint())
    # the real detectors calibrate on every calibration frame, as mbv1 detect's int8 does (on
    # the first 32 only, the gates measured 97.4% for the face SSD and 60.0% for the COCO one)
    out = [("face SSD 512 (real weights)", face.module, 512, 1,
            [x for f in frames for x in face.inputs(f)], face)]
    coco = export_spec(coco_checkpoint())
    out.append(("COCO SSDLite-MobileNetV2 300 (real weights)", coco.module, 300, 1,
                [x for f in frames for x in coco.inputs(f)], coco))
    ssd = fuse_bn(SSD(SSDConfig(num_classes=90, alpha=1.0)).eval())
    out.append(("SSD300 α=1, 91 classes (random)", AsTuple(ssd), 300, 1, calib(300, 1), None))
    for alpha in (1.0, 0.5, 0.25):
        body = fuse_bn(MobileNetV1(alpha).eval())
        for batch in (1, 32):
            out.append((f"MobileNetV1 α={alpha} 224, batch {batch}", AsTuple(body), 224, batch,
                        calib(224, batch)[:4], None))
    return out


def measure(name, module, size, batch, calib, spec, gate_frames, tmp: Path, threads: int,
            iters: int) -> dict:
    from mbv1.backbone.costs import count_costs
    from mbv1.runtimes.cached import AsTuple
    from mbv1.runtimes.onnx_file import export_onnx, openvino_from_onnx
    from mbv1.runtimes.quantize import (
        quantize_int8,
        quantize_openvino,
        quantize_tflite,
        with_live_channels,
    )
    from mbv1.runtimes.runners import OpenVinoRunner, OrtRunner

    x = calib[-1] if calib[-1].shape[0] == batch else torch.randn(batch, 3, size, size)
    n_out = len(module(x[:1]))
    names = [f"out{i}" for i in range(n_out)]
    onnx = tmp / f"{abs(hash(name))}.onnx"
    export_onnx(module, size, names, onnx, batch=batch)
    xml = openvino_from_onnx(onnx, onnx.with_suffix(".xml"))
    int8 = quantize_int8(onnx, onnx.with_suffix(".int8.onnx"), calib)
    ov_int8 = quantize_openvino(onnx, onnx.with_suffix(".int8.xml"), calib)
    eager = module.to(memory_format=torch.channels_last)
    xn, xc = x.numpy(), x.contiguous(memory_format=torch.channels_last)
    ort, ov, q = OrtRunner(onnx, threads), OpenVinoRunner(xml, threads), OrtRunner(int8, threads)
    ovq = OpenVinoRunner(ov_int8, threads)

    @torch.inference_mode()
    def run_eager():
        return eager(xc)

    runners = {"torch eager (folded, NHWC)": run_eager, "ONNX Runtime fp32": lambda: ort(xn),
               "OpenVINO fp32": lambda: ov(xn), "ONNX Runtime int8": lambda: q(xn),
               "OpenVINO int8 (NNCF)": lambda: ovq(xn)}
    int8_files = {"ONNX Runtime int8": int8, "OpenVINO int8 (NNCF)": ov_int8}
    if batch == 1:  # the phone format: a fixed one-image input
        from mbv1.runtimes.runners import TfliteRunner
        from mbv1.runtimes.tflite_file import export_tflite

        lite = TfliteRunner(export_tflite(module, size, onnx.with_suffix(".tflite")), threads)
        runners["LiteRT fp32 (XNNPACK)"] = lambda: lite(xn)
        live = export_tflite(with_live_channels(module), size, onnx.with_suffix(".live.tflite"))
        lite_int8 = quantize_tflite(live, onnx.with_suffix(".int8.tflite"), calib, threads)
        liteq = TfliteRunner(lite_int8, threads)
        runners["LiteRT int8 (XNNPACK)"] = lambda: liteq(xn)
        int8_files["LiteRT int8 (XNNPACK)"] = lite_int8
    agreement = {}
    if spec is not None:  # a real detector: its int8 gate on the held-out frames
        from mbv1.export import check

        for k, f in int8_files.items():
            parity, _ = check(spec, f, gate_frames, threads)
            agreement[k] = parity["agreement"]
    for fn in runners.values():
        for _ in range(2):
            fn()
    ms = {k: [] for k in runners}
    for _ in range(iters):
        for k, fn in runners.items():
            ms[k].append(1000 * _timed(fn))
    gflop = 2 * batch * count_costs(module.m if isinstance(module, AsTuple) else module,
                                    size).mult_adds / 1e9
    return {"gflop": gflop, "ms": {k: statistics.median(v) for k, v in ms.items()},
            "agreement": agreement}


def main() -> None:
    from mbv1.datasets.calibration import real_frames

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", nargs="*", default=None, help="substrings of model names")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    real = real_frames()
    frames = real.calibration
    peaks = [sgemm_peak_gflops()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, module, size, batch, calib, spec in models(frames):
            if args.only and not any(s in name for s in args.only):
                continue
            rows.append((name, measure(name, module, size, batch, calib, spec, real.gate,
                                       Path(tmp), args.threads, args.iters)))
            peaks.append(sgemm_peak_gflops())  # machine noise: the best of all measurements
    peak = max(peaks)
    print(f"sgemm peak {peak:.1f} GFLOP/s (best 2048^3 matmul of this run, measured before and "
          f"after each model: {min(peaks):.0f}-{peak:.0f}), {args.threads} threads, "
          f"torch {torch.__version__}")
    print(f"{'model':34s} {'runtime':28s} {'ms':>8s} {'vs eager':>9s} {'% of peak':>10s} "
          f"{'int8 gate':>10s}")
    for name, r in rows:
        base = next(iter(r["ms"].values()))
        for k, m in r["ms"].items():
            pct = 100 * r["gflop"] / (m / 1000) / peak
            gate = f"{100 * r['agreement'][k]:9.1f}%" if k in r["agreement"] else ""
            print(f"{name:34s} {k:28s} {m:8.1f} {base / m:8.2f}x {pct:9.0f}% {gate:>10s}")
    print(f"numpy {np.__version__}; int8 rows count int8 operations against the fp32 peak")


if __name__ == "__main__":
    main()
