"""``mbv1 faces`` (age, gender, expression and an embedding per face) and ``mbv1 verify``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mbv1.cli import common


class FaceDetector(str, Enum):
    ssd = "ssd"
    mtcnn = "mtcnn"


class CropPolicy(str, Enum):
    box = "box"
    aligned = "aligned"


def _print_int8(analyzer, c=None) -> None:
    """One line per network of ``analyzer`` that runs int8, with its gate's figure."""
    common.print_int8(analyzer.finder.ssd, "reproduces", "of fp32's detections on held-out real "
                      "frames (face detector)", c)
    common.print_int8(analyzer.student, "agrees with fp32 on", "of held-out real faces "
                      "(student)", c)


def faces(
    source: Annotated[str, typer.Argument(help="Image, folder, glob ('imgs/*.jpg'), video file or camera index.")],
    weights: Annotated[Path | None, typer.Option(help="A trained mbv1 face student (face-attributes, face-embeddings or faces); its heads replace the teachers. A shared face model (model.heads=shared) replaces the detector too.")] = None,
    detector: Annotated[FaceDetector, typer.Option(help="Face detector: mbv1's SSD face model or facenet-pytorch's MTCNN.")] = FaceDetector.ssd,
    crop: Annotated[CropPolicy | None, typer.Option(help="Canonical crop policy (default: the student's, else box).")] = None,
    conf: Annotated[float, typer.Option(min=0.0, max=1.0, help="Minimum detection score.")] = 0.5,
    no_attributes: Annotated[bool, typer.Option("--no-attributes", help="Skip age, gender and expression.")] = False,
    no_embedding: Annotated[bool, typer.Option("--no-embedding", help="Skip the face embedding.")] = False,
    no_landmarks: Annotated[bool, typer.Option("--no-landmarks", help="No MTCNN landmarks (faster; box crops from the detector's box). Default: as the student was trained, else on.")] = False,
    json_embedding: Annotated[bool, typer.Option(help="Write each face's embedding into the JSON lines.")] = True,
    vid_stride: Annotated[int, typer.Option(min=1, help="Process every N-th video frame.")] = 1,
    no_save: Annotated[bool, typer.Option("--no-save", help="Do not write annotated output or predictions.")] = False,
    device: common.DeviceOpt = "auto",
    backend: Annotated[common.Backend, typer.Option(help=common.BACKEND_HELP + " For every network: detector, attributes, embedding.")] = common.Backend.auto,
    precision: Annotated[common.Precision, typer.Option(help="On OpenVINO, for the face detector and a student: auto (int8 for each whose int8 gate passes at 99% on held-out real frames, else fp32 with a note), fp32, or int8 (forced).")] = common.Precision.auto,
    project: Annotated[Path, typer.Option(help="Parent folder of run folders.")] = Path("runs/faces"),
    name: Annotated[str, typer.Option(help="Run folder name (auto-suffixed: predict-2, …).")] = "predict",
    exist_ok: Annotated[bool, typer.Option("--exist-ok", help="Reuse the run folder.")] = False,
):
    """Per face: box, age, gender, expression (face-api teachers) and an embedding (FaceNet), or a trained student's."""
    from mbv1.media import resolve_source

    resolve_source(source)  # a bad source fails before any model loads
    from mbv1.faces.infer import FaceAnalyzer
    from mbv1.faces.run import faces as run_faces

    analyzer = FaceAnalyzer(weights, attributes=not no_attributes, embeddings=not no_embedding,
                            detector=detector.value, conf=conf, device=device,
                            crop=crop.value if crop else None, landmarks=False if no_landmarks else None,
                            backend=backend.value, warn=common.warn, precision=precision.value)
    common.leave_cores_to_runtimes(backend.value)
    result = common.run_with_progress(
        "faces", lambda progress: run_faces(source, analyzer, project, name, exist_ok,
                                            not no_save, vid_stride, json_embedding,
                                            progress=progress, warn=common.warn))
    c = common.console()
    c.print(f"{result.frames} frames, {result.faces} faces ({analyzer.describe()}, {device})")
    _print_int8(analyzer, c)
    if result.video:
        c.print(f"annotated video: {result.video}")
    if result.predictions:
        c.print(f"predictions: {result.predictions}")
    ms = result.ms
    fps = result.frames / result.wall_s if result.wall_s else 0.0
    c.print(f"Speed: {ms['decode']:.1f} ms decode, {ms['detect']:.1f} ms detect+align, "
            f"{ms['attributes']:.1f} ms attributes, {ms['embedding']:.1f} ms embedding per frame "
            f"({fps:.1f} frames/s end to end, decoding and writing beside the models)")


def verify(
    a: Annotated[str, typer.Argument(help="First image (its largest face is compared).")],
    b: Annotated[str, typer.Argument(help="Second image.")],
    weights: Annotated[Path | None, typer.Option(help="A trained face-embeddings / faces student or shared face model (default: the FaceNet teacher).")] = None,
    threshold: Annotated[float | None, typer.Option(min=0.0, max=2.0, help="Distance threshold (default: the model's documented one).")] = None,
    detector: Annotated[FaceDetector, typer.Option(help="Face detector.")] = FaceDetector.ssd,
    conf: Annotated[float, typer.Option(min=0.0, max=1.0, help="Minimum detection score.")] = 0.5,
    device: common.DeviceOpt = "auto",
    backend: Annotated[common.Backend, typer.Option(help=common.BACKEND_HELP)] = common.Backend.auto,
    precision: Annotated[common.Precision, typer.Option(help="On OpenVINO, for the face detector and a student: auto (int8 for each whose int8 gate passes at 99% on held-out real frames, else fp32 with a note), fp32, or int8 (forced).")] = common.Precision.auto,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Same person or not: L2 distance of the two largest faces' embeddings against a threshold."""
    from dataclasses import asdict

    from mbv1.errors import MBV1Error

    for p in (a, b):
        if not Path(p).is_file():
            raise MBV1Error(f"image not found: {p} (verify compares the largest faces of two images)")
    from mbv1.faces.infer import FaceAnalyzer
    from mbv1.faces.run import verify as run_verify

    analyzer = FaceAnalyzer(weights, attributes=False, embeddings=True, detector=detector.value,
                            conf=conf, device=device, backend=backend.value, warn=common.warn,
                            precision=precision.value)
    v = run_verify(a, b, analyzer, threshold)
    _print_int8(analyzer)  # on stderr: --json stays clean
    if json_out:
        common.print_json(asdict(v))
        return
    verdict = "[green]same person[/]" if v.same else "[red]different people[/]"
    c = common.console()
    c.print(f"{verdict}: distance {v.distance:.4f} {'<=' if v.same else '>'} threshold "
            f"{v.threshold:.4f}")
    c.print(f"embedding: {v.embedding_source}; threshold: {v.threshold_source}")
