"""``mbv1 classify``: top-k classes with label names for images, folders and globs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mbv1.backbone import fuse_bn
from mbv1.checkpoint import load_model
from mbv1.classification.model import TASKS, build_model, labels_of
from mbv1.datasets.augment import eval_preprocessing, to_tensor
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
        warn: gets a line when ``auto`` falls back to eager, or int8 is refused.
        precision: on OpenVINO, ``fp32`` (the default of the API), ``auto`` (the default of
            ``mbv1 classify``: int8 when its top-1 agrees with fp32's on at least 99% of the
            held-out real images, :meth:`int8_plan`) or ``int8`` (forced).
    """

    def __init__(self, checkpoint: str | Path, device: str = "auto", backend: str = "auto",
                 warn=None, precision: str = "fp32"):
        from mbv1.runtimes.cached import FastForward, check_precision, file_key, input_shape

        self.device = resolve_device(device)
        check_precision(precision, backend, self.device)
        loaded = load_model(checkpoint, TASKS, build_model, self.device)
        self.model, self.meta = fuse_bn(loaded.model), loaded.meta
        self.labels = labels_of(self.meta)
        self.transform, self.mean, self.std = eval_preprocessing(loaded.meta, loaded.config)
        ckpt = loaded.path
        self.forward = FastForward(self.model, input_shape(self.transform), ["logits"],
                                   ckpt.stem, file_key(ckpt), backend, self.device, warn,
                                   int8=self.int8_plan(precision, warn))
        self.backend, self.precision = self.forward.backend, self.forward.precision
        self.int8_gate = self.forward.gate  # the verdict, if any

    def int8_plan(self, precision: str = "auto", warn=None):
        """The int8 plan of this classifier: calibrated on the embedded calibration frames and
        gated on the held-out ones (:func:`mbv1.datasets.calibration.real_frames`, as the
        detectors are): the share of held-out images whose top-1 class int8 keeps."""
        from mbv1.datasets.calibration import batch_int8_plan

        def inputs(frames, _kind) -> torch.Tensor:
            return torch.stack([to_tensor(self.transform(f), self.mean, self.std) for f in frames])

        def top1(ref, got) -> np.ndarray:
            return ref[0].argmax(1) == np.asarray(got[0]).argmax(1)

        return batch_int8_plan(self.model, inputs, top1,
                               f"embedded-frames-v1:{self.transform.name}:{self.mean}:{self.std}",
                               "top-1", precision, warn,
                               "fp32's top-1 classes on held-out real images")

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
