"""scikit-learn's 1,797 real handwritten digits (8x8, 16 grey levels) as an image folder.

The UCI "optical recognition of handwritten digits" test set ships inside scikit-learn, so it
is real labelled data that needs no download: mbv1's proof that classification training learns.
``write_digits`` writes ``out/train/<digit>/*.png`` and ``out/val/<digit>/*.png`` (a stratified
held-out split), upsampled to ``size`` pixels with bicubic interpolation.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from mbv1.checkpoint import atomic_write
from mbv1.datasets.folder import Sample, stratified_split
from mbv1.errors import MBV1Error


def write_digits(out: str | Path, size: int = 32, val_fraction: float = 0.2, seed: int = 0,
                 per_class: int | None = None) -> dict:
    """Write the digits as an image folder; returns a summary (counts per split).

    Args:
        out: output folder (must be empty or absent).
        size: side of the written PNGs in pixels (>= 8).
        val_fraction: share of every digit held out in ``val/``.
        seed: seed of the held-out split.
        per_class: keep only the first N images of each digit (tiny sets for tests).
    """
    from sklearn.datasets import load_digits

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise MBV1Error(f"{out} is not empty: choose a new folder for the digits")
    if size < 8:
        raise MBV1Error(f"--size must be at least 8 (the digits are 8x8); got {size}")
    digits = load_digits()
    images, targets = digits.images, digits.target
    keep = np.arange(len(targets))
    if per_class is not None:
        keep = np.concatenate([np.flatnonzero(targets == d)[:per_class] for d in range(10)])
    samples = [Sample(str(i), int(targets[i])) for i in keep]
    train, val = stratified_split(samples, val_fraction, seed)
    for split, items in (("train", train), ("val", val)):
        for s in items:
            i = int(s.path)
            pixels = np.clip(images[i] * (255.0 / 16.0), 0, 255).astype(np.uint8)
            img = Image.fromarray(pixels, "L").resize((size, size), Image.BICUBIC)
            folder = out / split / str(s.label)
            folder.mkdir(parents=True, exist_ok=True)
            img.save(folder / f"digit_{i:04d}.png")
    summary = {"source": "sklearn.datasets.load_digits (UCI optical digits, 1,797 images)",
               "size": size, "seed": seed, "train": len(train), "val": len(val),
               "classes": [str(d) for d in range(10)]}
    atomic_write(out / "digits.json", json.dumps(summary, indent=2))
    return summary
