"""``mbv1 detect SOURCE``: stream frames through a Detector, save annotated output and
predictions into ``runs/detect/<name>``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mbv1.detection.predictor import Detections, Detector
from mbv1.media import PredictionWriter, increment_dir, resolve_source, run_stream


@dataclass
class DetectResult:
    out_dir: Path | None
    frames: int
    detections: int
    ms: dict[str, float]  # per frame: decode, preprocess, inference, postprocess
    video: Path | None = None
    predictions: Path | None = None
    wall_s: float = 0.0  # the whole stream: decoding, model and writing overlap


def detect(source: str, detector: Detector, project: Path = Path("runs/detect"), name: str = "predict",
           exist_ok: bool = False, save: bool = True, vid_stride: int = 1, progress=None,
           warn=print) -> DetectResult:
    """Run ``detector`` over SOURCE (image, folder, glob, video, camera index).

    Images: annotated copies + ``predictions.json`` (COCO results: image_id, category_id,
    bbox [x, y, w, h] pixels, score, plus file_name). Video: an annotated .mp4 at the source's
    fps and size + ``predictions.jsonl`` (one line per frame: frame, time_s, detections).
    """
    src = resolve_source(source)
    out_dir = increment_dir(Path(project), name, exist_ok) if save else None
    writer = PredictionWriter(src, out_dir, _annotate, lambda r: {"detections": r.to_list()},
                              coco=_coco) if save else None
    stats = run_stream(src, detector, writer, vid_stride, progress, warn,
                       prepare=detector.prepare)
    ms = {"decode": stats.decode_ms, **detector.timings.per_frame()}
    return DetectResult(out_dir, stats.frames, stats.items, ms, writer.video if writer else None,
                        writer.predictions if writer else None, stats.wall_s)


def _annotate(frame, result: Detections):
    from mbv1.annotate import draw_boxes

    captions = [f"{n} {s:.2f}" for n, s in zip(result.names, result.scores)]
    return draw_boxes(frame.rgb, result.boxes_xyxy, captions, list(result.labels))


def image_id(frame) -> int:
    """COCO's image id of a file named by it (``000000397133.jpg`` → 397133, as COCO's own
    files are), so that pycocotools scores ``predictions.json`` against the annotations as it
    is; otherwise the image's index in the run."""
    stem = Path(str(frame.path)).stem if frame.path is not None else ""
    return int(stem) if stem.isdigit() else frame.index


def _coco(frame, result: Detections) -> list[dict]:
    """COCO results of one image: :func:`image_id`, the model's category ids (COCO's 1..90 for
    the COCO model, the training set's for a trained one), bbox [x, y, w, h] pixels."""
    return [{"image_id": image_id(frame), "file_name": str(frame.path), "category_id": int(c),
             "bbox": [round(float(x0), 2), round(float(y0), 2), round(float(x1 - x0), 2),
                      round(float(y1 - y0), 2)],
             "score": round(float(s), 5)}
            for (x0, y0, x1, y1), s, c in zip(result.boxes_xyxy, result.scores, result.categories())]
