"""``mbv1 detect SOURCE``: stream frames through a Detector, save annotated output and
predictions into ``runs/detect/<name>``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mbv1.detection.predictor import Detector
from mbv1.media import Source, VideoSink, increment_dir, resolve_source, run_stream


@dataclass
class DetectResult:
    out_dir: Path | None
    frames: int
    detections: int
    ms: dict[str, float]  # per frame: decode, preprocess, inference, postprocess
    video: Path | None = None
    predictions: Path | None = None


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
    writer = _Writer(src, out_dir, detector) if save else None
    stats = run_stream(src, detector, writer, vid_stride, progress, warn)
    ms = {"decode": stats.decode_ms, **detector.timings.per_frame()}
    return DetectResult(out_dir, stats.frames, stats.items, ms, writer.video if writer else None,
                        writer.predictions if writer else None)


class _Writer:
    def __init__(self, src: Source, out_dir: Path, detector: Detector):
        self.src, self.out_dir, self.detector = src, out_dir, detector
        self.video = self.sink = None
        self.coco: list[dict] = []
        if src.is_video:
            stem = src.paths[0].stem if src.paths else f"camera{src.camera}"
            self.video = out_dir / f"{stem}.mp4"
            self.predictions = out_dir / f"{stem}.jsonl"
            # Held open across frames (streamed), closed and renamed in close().
            self._jsonl = open(self.predictions.with_suffix(".jsonl.tmp"), "w")  # noqa: SIM115
        else:
            self.predictions = out_dir / "predictions.json"

    def add(self, frame, result) -> None:
        from mbv1.annotate import draw_boxes

        captions = [f"{n} {s:.2f}" for n, s in zip(result.names, result.scores)]
        annotated = draw_boxes(frame.rgb, result.boxes_xyxy, captions, list(result.labels))
        if self.src.is_video:
            if self.sink is None:
                h, w = frame.rgb.shape[:2]
                self.sink = VideoSink(self.video, self.src.fps or 25.0, (w, h))
            self.sink.write(annotated)
            self._jsonl.write(json.dumps({"frame": frame.index, "time_s": round(frame.time_s, 4),
                                          "detections": result.to_list()}) + "\n")
            return
        from PIL import Image

        name = frame.path.name if frame.path.suffix.lower() in (".jpg", ".jpeg", ".png") else frame.path.stem + ".png"
        Image.fromarray(annotated).save(self.out_dir / name, quality=92)
        for (x0, y0, x1, y1), s, c in zip(result.boxes_xyxy, result.scores, result.labels):
            self.coco.append({"image_id": frame.index, "file_name": str(frame.path),
                              "category_id": int(c) + 1, "bbox": [round(float(x0), 2), round(float(y0), 2),
                                                                  round(float(x1 - x0), 2), round(float(y1 - y0), 2)],
                              "score": round(float(s), 5)})

    def close(self) -> None:
        import os

        from mbv1.checkpoint import atomic_write

        if self.src.is_video:
            self._jsonl.close()
            os.replace(self._jsonl.name, self.predictions)
            if self.sink:
                self.sink.close()
        else:
            atomic_write(self.predictions, lambda p: Path(p).write_text(json.dumps(self.coco, indent=1)))
