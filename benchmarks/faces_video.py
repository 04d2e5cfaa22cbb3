"""``mbv1 faces`` speed: the teachers and a trained student, eager PyTorch, the exported
runtimes in fp32 (``--precision fp32``) and the default (``--backend auto --precision auto``:
int8 for each network whose gate passes), side by side in one run.

    .venv/bin/python benchmarks/faces_video.py --student runs/faces/exp/best.pt [--student ...] [--frames 60]

Per frame of carphone_pristine.mp4 (176x144, one face), configurations interleaved frame by
frame so that machine noise hits all alike: detector + MTCNN landmarks + attributes +
embedding, median ms and frames/s of the models alone; then each default configuration over the
whole video as ``mbv1 faces`` runs it (pipelined decode and writing), frames/s end to end.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def frames_of(video: Path, n: int) -> list:
    import cv2

    cap = cv2.VideoCapture(str(video))
    out = []
    while len(out) < n:
        ok, f = cap.read()
        if not ok:
            break
        out.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    return out


def main() -> None:
    from mbv1 import assets
    from mbv1.cli.detect import DEMO_VIDEO
    from mbv1.faces.infer import FaceAnalyzer
    from mbv1.faces.run import faces

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--student", type=Path, action="append", default=[],
                   help="a trained faces student (repeat for several)")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--video", type=Path, default=None)
    args = p.parse_args()
    video = args.video or assets.path(*DEMO_VIDEO)
    frames = frames_of(video, args.frames)
    configs = {}
    for who, weights in (("teachers", None),
                         *((f"student {s.parent.name}", s) for s in args.student)):
        for name, backend, precision, threads in (("eager PyTorch", "eager", "fp32", 2),
                                                  ("fp32 runtimes", "auto", "fp32", 1),
                                                  ("mbv1 default", "auto", "auto", 1)):
            torch.set_num_threads(threads)
            a = FaceAnalyzer(weights, backend=backend, precision=precision, warn=print)
            configs[f"{who}, {name}"] = (a, threads, backend)
    for a, threads, _ in configs.values():
        torch.set_num_threads(threads)
        for f in frames[:3]:
            a(f)
    ms = {k: [] for k in configs}
    for f in frames:
        for k, (a, threads, _) in configs.items():
            torch.set_num_threads(threads)
            t = time.perf_counter()
            a(f)
            ms[k].append(1000 * (time.perf_counter() - t))
    print(f"{video.name}, {len(frames)} frames, models only (median ms per frame)")
    base = {}
    for k, v in ms.items():
        m = statistics.median(v)
        who = k.split(",")[0]
        base.setdefault(who, m)
        # ratios: to the same networks on eager PyTorch, and to the teachers on eager PyTorch
        # (mbv1 faces as it ran before the fast paths)
        print(f"  {k:36s} {m:7.1f} ms  {1000 / m:5.1f} frames/s  {base[who] / m:5.2f}x own eager"
              f"  {base['teachers'] / m:5.2f}x teachers eager  ({configs[k][0].describe()})")
    print("whole video as `mbv1 faces` runs it (pipelined, annotated video + JSON written):")
    ref = None
    with tempfile.TemporaryDirectory() as tmp:
        for k, (a, threads, backend) in configs.items():
            torch.set_num_threads(threads)
            r = faces(str(video), a, Path(tmp), "bench", save=True, exist_ok=True,
                      warn=lambda m: None)
            fps = r.frames / r.wall_s
            ref = ref or fps  # the first configuration: the teachers on eager PyTorch
            print(f"  {k:36s} {fps:5.1f} frames/s end to end  {fps / ref:5.2f}x teachers eager")


if __name__ == "__main__":
    main()
