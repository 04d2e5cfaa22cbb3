"""A torch Dataset over labelled samples: load, crop, augment, normalise.

Items are ``{"image": [3, R, R] float, "label": int, "index": int}``; an unreadable image is
reported on stderr with its path and gives ``None`` (``on_bad_image="skip"``; the task's
collate drops it) or stops the run with an error naming it (``"fail"``).
"""

from __future__ import annotations

import sys

import numpy as np
from torch.utils.data import Dataset

from mbv1.datasets.augment import Transform, to_tensor
from mbv1.datasets.folder import Sample
from mbv1.datasets.images import load_rgb
from mbv1.errors import MBV1Error
from mbv1.seeding import sample_seed


class ClassificationDataset(Dataset):
    """Args:
        samples: the labelled images.
        transform: a :class:`~mbv1.datasets.augment.Transform`.
        mean, std: normalisation (RGB, fractions of 255).
        seed: ``train.seed``; ``None`` for deterministic evaluation transforms.
        on_bad_image: ``skip`` or ``fail``.
    """

    def __init__(self, samples: list[Sample], transform: Transform, mean, std,
                 seed: int | None = None, on_bad_image: str = "skip"):
        if on_bad_image not in ("skip", "fail"):
            raise ValueError(f"on_bad_image must be skip or fail; got {on_bad_image!r}")
        self.samples = samples
        self.transform = transform
        self.mean, self.std = tuple(mean), tuple(std)
        self.seed = seed
        self.on_bad_image = on_bad_image
        self.epoch = 0
        self._reported: set[str] = set()

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Called by the engine before each epoch: augmentation seeds depend on it."""
        self.epoch = epoch

    def targets(self) -> np.ndarray:
        return np.array([s.label for s in self.samples], dtype=np.int64)

    def __getitem__(self, index: int) -> dict | None:
        s = self.samples[index]
        try:
            img = load_rgb(s.path)
        except MBV1Error as e:
            if self.on_bad_image == "fail":
                raise MBV1Error(f"{e} (data.on_bad_image=fail; set it to skip to train on)"
                                ) from None
            if s.path not in self._reported:  # once per process; every worker may report it
                self._reported.add(s.path)
                print(f"warning: skipping {e}", file=sys.stderr, flush=True)
            return None
        if s.box is not None:
            img = img.crop(s.box)
        seed = None if self.seed is None else sample_seed(self.seed, self.epoch, index)
        image = self.transform(np.asarray(img), seed)
        return {"image": to_tensor(image, self.mean, self.std), "label": s.label, "index": index}
