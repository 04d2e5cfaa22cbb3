"""``mbv1 classify``: top-k classes with label names for images, folders and globs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from mbv1.backbone import fuse_bn
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
        backend: ``auto`` (on the CPU the fastest exported runtime that passes its parity
            check, :mod:`mbv1.runtimes.cached`), ``eager``, ``onnxruntime`` or ``openvino``.
        warn: gets a line when ``auto`` falls back to eager.
    """

    def __init__(self, checkpoint: str | Path, device: str = "auto", backend: str = "auto",
                 warn=None):
        from mbv1.runtimes.cached import FastForward, file_key, input_shape

        self.device = resolve_device(device)
        loaded = load_model(checkpoint, TASKS, build_model, self.device)
        self.model, self.meta = fuse_bn(loaded.model), loaded.meta
        self.labels = labels_of(self.meta)
        self.transform, self.mean, self.std = eval_preprocessing(loaded.meta, loaded.config)
        ckpt = loaded.path
        self.forward = FastForward(self.model, input_shape(self.transform), ["logits"],
                                   ckpt.stem, file_key(ckpt), backend, self.device, warn)
        self.backend = self.forward.backend

    @torch.no_grad()
    def predict(self, paths: list[str | Path], top_k: int = 5, batch_size: int = 32):
        """Yield a :class:`Prediction` per path, in order; unreadable images give ``error``."""
        from mbv1.datasets.images import image_batches

        k = min(top_k, len(self.labels))
        for items, x in image_batches(paths, self.transform, self.mean, self.std, batch_size):
            probs = (self.forward(x.to(self.device))[0].float().softmax(1).cpu()
                     if x is not None else None)
            for p, row, error in items:
                if error:
                    yield Prediction(str(p), [], error)
                    continue
                values, idx = probs[row].topk(k)
                yield Prediction(str(p), [(self.labels[c], int(c), float(v))
                                          for v, c in zip(values.tolist(), idx.tolist())])
