"""``mbv1 faces SOURCE`` and ``mbv1 verify A B``: the library functions behind the commands.

``faces`` streams frames through a :class:`~mbv1.faces.infer.FaceAnalyzer` and writes, like
``mbv1 detect``, into ``runs/faces/<name>``: annotated images + ``predictions.jsonl`` (one line
per image: file, faces) or an annotated .mp4 at the source's fps + ``<stem>.jsonl`` (one line
per processed frame: frame, time_s, faces). Each face: box, score, landmarks, age, gender,
gender_probability, expression, expressions, embedding (unless ``embeddings_in_json=False``),
crop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mbv1.errors import MBV1Error
from mbv1.faces.infer import FaceAnalyzer, FaceResult
from mbv1.media import PredictionWriter, increment_dir, resolve_source, run_stream

__all__ = ["FacesResult", "Verification", "faces", "verify"]


@dataclass
class FacesResult:
    out_dir: Path | None
    frames: int
    faces: int
    ms: dict[str, float]  # per frame: decode, detect, attributes, embedding
    video: Path | None = None
    predictions: Path | None = None
    wall_s: float = 0.0  # the whole stream: decoding, model and writing overlap


def faces(source: str, analyzer: FaceAnalyzer, project: Path = Path("runs/faces"),
          name: str = "predict", exist_ok: bool = False, save: bool = True, vid_stride: int = 1,
          embeddings_in_json: bool = True, progress=None, warn=print) -> FacesResult:
    """Run ``analyzer`` over SOURCE (image, folder, glob, video, camera index)."""
    src = resolve_source(source)
    out_dir = increment_dir(Path(project), name, exist_ok) if save else None

    def to_json(result: list[FaceResult]) -> dict:
        return {"faces": [r.to_dict(embeddings_in_json) for r in result]}

    writer = PredictionWriter(src, out_dir, _annotate, to_json) if save else None
    stats = run_stream(src, analyzer, writer, vid_stride, progress, warn)
    ms = {"decode": stats.decode_ms, **analyzer.per_frame_ms()}
    return FacesResult(out_dir, stats.frames, stats.items, ms, writer.video if writer else None,
                       writer.predictions if writer else None, stats.wall_s)


def _annotate(frame, result: list[FaceResult]):
    from mbv1.annotate import draw_boxes

    boxes = np.array([r.box_xyxy for r in result], np.float32).reshape(-1, 4)
    colors = [0 if r.gender == "male" else 5 if r.gender == "female" else 2 for r in result]
    return draw_boxes(frame.rgb, boxes, [r.caption() for r in result], colors)


@dataclass
class Verification:
    """``mbv1 verify``: the distance of the largest faces of two images and the decision."""

    same: bool
    distance: float
    threshold: float
    threshold_source: str
    boxes_xyxy: tuple[list[float], list[float]]
    embedding_source: str


def _largest_face(analyzer: FaceAnalyzer, path: str) -> FaceResult:
    from mbv1.datasets.images import load_rgb

    src = resolve_source(path)
    if src.kind != "images" or len(src.paths) != 1:
        raise MBV1Error(f"verify compares two images; {path} is a {src.kind} source with "
                        f"{len(src.paths)} files")
    rgb = np.asarray(load_rgb(src.paths[0]))
    found = analyzer(rgb)
    if not found:
        if analyzer.shared is not None:
            raise MBV1Error(f"no face found in {path} by the shared face model's detector "
                            f"(min score {analyzer.shared.model.post.conf}); try --conf 0.3")
        raise MBV1Error(f"no face found in {path} (detector {analyzer.finder.detector_name}, "
                        f"min score {analyzer.finder.conf}); try --conf 0.3 or --detector mtcnn")
    return max(found, key=lambda r: (r.box_xyxy[2] - r.box_xyxy[0]) * (r.box_xyxy[3] - r.box_xyxy[1]))


def verify(a: str, b: str, analyzer: FaceAnalyzer, threshold: float | None = None) -> Verification:
    """Same person or not: embeddings of the largest face in each image, L2 distance, and the
    threshold (given, else the analyzer's documented one)."""
    fa, fb = _largest_face(analyzer, a), _largest_face(analyzer, b)
    ea, eb = np.asarray(fa.embedding, np.float64), np.asarray(fb.embedding, np.float64)
    dist = float(np.linalg.norm(ea - eb))
    if threshold is None:
        threshold, source = analyzer.threshold
    else:
        source = "given (--threshold)"
    return Verification(dist <= threshold, dist, float(threshold), source,
                        (fa.box_xyxy, fb.box_xyxy), analyzer.emb_source or "?")
