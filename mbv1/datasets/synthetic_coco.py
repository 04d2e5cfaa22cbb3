"""A small synthetic COCO-format detection set: coloured shapes on textured, noisy backgrounds.

For tests and CPU proofs of learning of the detection task in the real format: JPEG files and
``instances_{train,val}.json`` with the COCO schema (``images``, ``annotations`` with pixel
``bbox`` xywh, ``area``, ``iscrowd``, polygon ``segmentation``; ``categories``). Four classes,
told apart by shape only (colours are random per object): circle, square, triangle, cross,
rotated at random, 0–4 per image (some images are empty negatives), sides 16–50 % of the image
(the range SSD's anchors, scales 0.2–0.95 with 0.1 on the lowest map, are built for),
overlapping at most IoU 0.3 (later shapes occlude earlier ones). Backgrounds mix a colour
gradient, a random grating, clutter lines and pixel noise.

Deterministic for a given seed: the same arguments write the same bytes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mbv1.errors import MBV1Error

CATEGORIES = ("circle", "square", "triangle", "cross")
SUPERSAMPLE = 2  # shapes drawn at 2x then downsampled: anti-aliased edges


@dataclass(frozen=True)
class SyntheticCocoSet:
    """Where a generated set lies (the ``--data DIR`` layout of the detection task)."""

    root: Path
    train_json: Path
    val_json: Path
    train_images: Path
    val_images: Path
    num_train: int
    num_val: int


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """Vertices ``[V, 2]`` (x, y) of a shape of circumradius-like size ``r``."""
    if kind == "circle":
        t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t)], 1)
        angle = 0.0
    elif kind == "square":
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) / math.sqrt(2)
    elif kind == "triangle":
        t = np.array([-90, 30, 150]) * np.pi / 180
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif kind == "cross":
        a, b = 1.0, 0.33
        pts = np.array([[-b, -a], [b, -a], [b, -b], [a, -b], [a, b], [b, b], [b, a], [-b, a],
                        [-b, b], [-a, b], [-a, -b], [-b, -b]], float)
    else:
        raise ValueError(kind)
    c, s = math.cos(angle), math.sin(angle)
    rot = pts @ np.array([[c, s], [-s, c]])
    return rot * r + [cx, cy]


def _area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def _iou(a: list[float], b: list[float]) -> float:
    """IoU of two pixel xywh boxes."""
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    """``[size, size, 3]`` float image in [0, 255]: gradient + grating + noise."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    c0, c1 = rng.uniform(40, 215, 3), rng.uniform(40, 215, 3)
    t = rng.uniform(0, 2 * np.pi)
    g = (np.cos(t) * xx + np.sin(t) * yy)[..., None]
    g = (g - g.min()) / (np.ptp(g) + 1e-9)
    img = c0 * (1 - g) + c1 * g
    freq, phase, theta = rng.uniform(2, 12), rng.uniform(0, 2 * np.pi), rng.uniform(0, np.pi)
    grating = np.sin(2 * np.pi * freq * (np.cos(theta) * xx + np.sin(theta) * yy) + phase)
    img += rng.uniform(5, 30) * grating[..., None]
    return img


def render(size: int, rng: np.random.Generator, max_objects: int = 4
           ) -> tuple[Image.Image, list[tuple[int, np.ndarray]]]:
    """One image and its objects ``[(category index, polygon [V, 2] pixels)]``."""
    s = SUPERSAMPLE
    bg = _background(size, rng)
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8)).resize((size * s, size * s),
                                                                       Image.BILINEAR)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(0, 4)):  # clutter lines: not objects
        pts = rng.uniform(0, size * s, 4).tolist()
        draw.line(pts, fill=tuple(int(v) for v in rng.integers(0, 256, 3)),
                  width=int(rng.integers(1, 3 * s)))
    objects: list[tuple[int, np.ndarray]] = []
    boxes: list[list[float]] = []
    n = int(rng.integers(0, max_objects + 1))
    for _ in range(n):
        for _attempt in range(20):
            kind = int(rng.integers(len(CATEGORIES)))
            r = rng.uniform(0.08, 0.25) * size
            cx, cy = rng.uniform(r, size - r, 2)
            poly = _polygon(CATEGORIES[kind], cx, cy, r, rng.uniform(0, np.pi / 2))
            x0, y0 = poly.min(0)
            x1, y1 = poly.max(0)
            box = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
            if all(_iou(box, b) <= 0.3 for b in boxes):
                break
        else:
            continue
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.polygon([tuple(p) for p in (poly * s).tolist()], fill=colour)
        objects.append((kind, poly))
        boxes.append(box)
    img = img.resize((size, size), Image.BOX)
    noisy = np.asarray(img, np.float32) + rng.normal(0, rng.uniform(2, 10), (size, size, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)), objects


def _write_split(root: Path, split: str, count: int, size: int, rng: np.random.Generator,
                 quality: int, first_ann_id: int) -> tuple[Path, int]:
    folder = root / "images" / split
    folder.mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    ann_id = first_ann_id
    for k in range(count):
        img, objects = render(size, rng)
        name = f"{k:05d}.jpg"
        img.save(folder / name, quality=quality)
        images.append({"id": k + 1, "file_name": name, "width": size, "height": size})
        for kind, poly in objects:
            poly = np.clip(poly, 0, size)
            x0, y0 = poly.min(0)
            x1, y1 = poly.max(0)
            anns.append({"id": ann_id, "image_id": k + 1, "category_id": kind + 1,
                         "bbox": [round(float(v), 2) for v in (x0, y0, x1 - x0, y1 - y0)],
                         "area": round(_area(poly), 2), "iscrowd": 0,
                         "segmentation": [[round(float(v), 2) for v in poly.reshape(-1)]]})
            ann_id += 1
    data = {"info": {"description": f"mbv1 synthetic shapes ({split})", "version": "1.0"},
            "licenses": [],
            "images": images, "annotations": anns,
            "categories": [{"id": i + 1, "name": c, "supercategory": "shape"}
                           for i, c in enumerate(CATEGORIES)]}
    path = root / "annotations" / f"instances_{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path, ann_id


def make_synthetic_coco(root: str | Path, num_train: int = 400, num_val: int = 100,
                        size: int = 128, seed: int = 0, quality: int = 90) -> SyntheticCocoSet:
    """Write a synthetic COCO detection set under ``root``.

    Layout: ``root/annotations/instances_{train,val}.json`` and ``root/images/{train,val}/
    NNNNN.jpg`` (image ids 1..n per split), the layout ``mbv1 train detection --data ROOT``
    reads.

    Args:
        root: output folder (created; files of the same names are overwritten).
        num_train, num_val: images per split (independent draws).
        size: image side in pixels.
        seed: everything random derives from it.
        quality: JPEG quality.
    """
    if num_train < 1 or num_val < 1 or size < 32:
        raise MBV1Error(f"need num_train >= 1, num_val >= 1 and size >= 32; "
                        f"got {num_train}, {num_val}, {size}")
    root = Path(root)
    train_json, next_id = _write_split(root, "train", num_train, size,
                                       np.random.default_rng([seed, 0]), quality, 1)
    val_json, _ = _write_split(root, "val", num_val, size, np.random.default_rng([seed, 1]),
                               quality, next_id)
    return SyntheticCocoSet(root, train_json, val_json, root / "images" / "train",
                            root / "images" / "val", num_train, num_val)


def main(argv: list[str] | None = None) -> None:
    """``python -m mbv1.datasets.synthetic_coco ROOT [--train N] [--val N] [--size S]``."""
    import argparse

    p = argparse.ArgumentParser(description=make_synthetic_coco.__doc__.splitlines()[0])
    p.add_argument("root")
    p.add_argument("--train", type=int, default=400)
    p.add_argument("--val", type=int, default=100)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    out = make_synthetic_coco(a.root, a.train, a.val, a.size, a.seed)
    print(f"wrote {out.num_train} train and {out.num_val} val images to {out.root}")


if __name__ == "__main__":
    main()
