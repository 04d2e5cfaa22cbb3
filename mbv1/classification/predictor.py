"""``mbv1 classify``: top-k classes with label names for images, folders and globs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from mbv1.checkpoint import load_model
from mbv1.classification.model import TASKS, build_model, labels_of
from mbv1.datasets.augment import eval_preprocessing
from mbv1.devices import resolve_device


@dataclass
class Prediction:
    """Top-k of one image: ``top`` = [(label, class index, probability)], or an ``error``."""

    path: str
    top: list[tuple[str, int, float]]
    error: str | None = None


class Classifier:
    """Top-k predictions of a classification checkpoint (``mbv1 classify``).

    Args:
        checkpoint: an mbv1 classification / fine-grained checkpoint or run folder.
        device: ``auto``, ``cpu``, ``cuda``...
    """

    def __init__(self, checkpoint: str | Path, device: str = "auto"):
        loaded = load_model(checkpoint, TASKS, build_model, resolve_device(device))
        self.model, self.meta, self.device = loaded.model, loaded.meta, resolve_device(device)
        self.labels = labels_of(self.meta)
        self.transform, self.mean, self.std = eval_preprocessing(loaded.meta, loaded.config)

    @torch.no_grad()
    def predict(self, paths: list[str | Path], top_k: int = 5, batch_size: int = 32):
        """Yield a :class:`Prediction` per path, in order; unreadable images give ``error``."""
        from mbv1.datasets.images import image_batches

        k = min(top_k, len(self.labels))
        for items, x in image_batches(paths, self.transform, self.mean, self.std, batch_size):
            probs = (self.model(x.to(self.device)).float().softmax(1).cpu()
                     if x is not None else None)
            for p, row, error in items:
                if error:
                    yield Prediction(str(p), [], error)
                    continue
                values, idx = probs[row].topk(k)
                yield Prediction(str(p), [(self.labels[c], int(c), float(v))
                                          for v, c in zip(values.tolist(), idx.tolist())])
