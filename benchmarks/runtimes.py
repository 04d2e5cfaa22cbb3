"""Model time of one checkpoint on every runtime mbv1 exports to, side by side in one run.

    .venv/bin/python benchmarks/runtimes.py [CKPT] [--iters N] [--threads T]

Default CKPT: the real SSD-MobileNetV1 face model (512x512). Exports it (ONNX fp32, OpenVINO
fp32, int8 QDQ calibrated on the embedded frames, through ``mbv1.export``), then times torch
eager (BN folded, channels-last: mbv1's eager path) and each file on the same real input,
interleaved round by round so that machine noise hits all alike; prints median ms, the ratio to
eager and the share of this machine's sgemm peak, measured in the same run (a 2048^3 matmul).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def sgemm_peak_gflops(n: int = 2048, reps: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(reps))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    from mbv1.backbone.costs import count_costs
    from mbv1.detection.face_model import default_checkpoint
    from mbv1.export import export
    from mbv1.export.calibration import real_frames
    from mbv1.export.runtimes import runner_for
    from mbv1.export.spec import export_spec

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", nargs="?", default=None)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    ckpt = Path(args.checkpoint) if args.checkpoint else default_checkpoint()
    spec = export_spec(ckpt)
    x = spec.inputs(real_frames().gate[-1])[0]
    gflop = 2 * count_costs(spec.module, spec.input_size).mult_adds / 1e9
    runners = {}
    eager = spec.module.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def run_eager():
        return eager(x.contiguous(memory_format=torch.channels_last))

    runners["torch eager (BN folded, NHWC)"] = run_eager
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, label in (("onnx", "ONNX Runtime fp32"), ("openvino", "OpenVINO fp32"),
                           ("int8", "ONNX Runtime int8 (QDQ)")):
            try:
                res = export(ckpt, fmt, tmp, min_agreement=0.0, threads=args.threads)
            except Exception as e:  # report and go on: one runtime missing is a finding
                print(f"{label}: not measured ({e})")
                continue
            run = runner_for(res.path, args.threads)
            xn = x.numpy()
            runners[f"{label} [agreement {100 * res.parity['agreement']:.0f}%]"] = \
                lambda run=run, xn=xn: run(xn)
        peak = sgemm_peak_gflops()
        for fn in runners.values():
            for _ in range(3):
                fn()
        ms = {k: [] for k in runners}
        for _ in range(args.iters):
            for k, fn in runners.items():
                ms[k].append(1000 * _timed(fn))
    base = statistics.median(next(iter(ms.values())))
    print(f"{ckpt.name}: {gflop:.2f} GFLOP per frame ({spec.input_size}x{spec.input_size}), "
          f"{args.threads} threads, sgemm peak {peak:.1f} GFLOP/s (2048^3 matmul, same run)")
    print(f"{'runtime':52s} {'ms':>8s} {'vs eager':>9s} {'% of peak':>10s}")
    for k, v in ms.items():
        m = statistics.median(v)
        print(f"{k:52s} {m:8.1f} {base / m:8.2f}x {100 * gflop / (m / 1000) / peak:9.0f}%")
    print(f"torch {torch.__version__}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
