"""Image augmentation: the one module that touches albumentations.

albumentations 2.0.8 is unmaintained (its successor is AGPL) and calls PyPI on import unless
``NO_ALBUMENTATIONS_UPDATE=1``; keeping every use here makes it replaceable. Each transform is
driven by an explicit per-sample seed (albumentations' own numpy and Python generators are
reseeded per call), so augmentation never reads a global RNG.

Policies (``data.augment``):
    inception: RandomResizedCrop(area ``crop_scale``, aspect 3/4..4/3) + flip + optional
        colour jitter: the Inception / TF-slim training preprocessing.
    light: resize the shorter side to ``resolution / eval_crop``, random crop, flip: the
        "less augmentation" the paper recommends for small models (section 4).
    none: the evaluation transform.
Evaluation: resize the shorter side to ``resolution / eval_crop``, centre crop (TF-slim's
central fraction 0.875).
"""

from __future__ import annotations

import os

import numpy as np
import torch

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def albumentations():
    """The albumentations module: every mbv1 use goes through here (no PyPI call on import)."""
    import albumentations as A

    return A


class Transform:
    """``transform(image HxWx3 uint8, seed) -> HxWx3 uint8``; ``seed=None`` for evaluation."""

    def __init__(self, compose, name: str):
        self.compose, self.name = compose, name

    def __call__(self, image: np.ndarray, seed: int | None = None) -> np.ndarray:
        self.compose.set_random_seed(seed)
        return self.compose(image=np.ascontiguousarray(image))["image"]

    def __repr__(self) -> str:
        return f"Transform({self.name})"


def eval_transform(resolution: int, eval_crop: float = 0.875) -> Transform:
    A = albumentations()

    side = _resize_side(resolution, eval_crop)
    return Transform(A.Compose([A.SmallestMaxSize(max_size=side),
                                A.CenterCrop(resolution, resolution)]),
                     f"eval: resize {side}, centre crop {resolution}")


def train_transform(resolution: int, augment: str = "inception",
                    crop_scale: tuple[float, float] = (0.08, 1.0), hflip: bool = True,
                    color_jitter: float = 0.0, eval_crop: float = 0.875) -> Transform:
    """The training transform of a policy (module docstring)."""
    A = albumentations()

    if augment == "none":
        return eval_transform(resolution, eval_crop)
    if augment == "inception":
        ops = [A.RandomResizedCrop(size=(resolution, resolution), scale=tuple(crop_scale),
                                   ratio=(3 / 4, 4 / 3))]
    elif augment == "light":
        ops = [A.SmallestMaxSize(max_size=_resize_side(resolution, eval_crop)),
               A.RandomCrop(resolution, resolution)]
    else:
        raise ValueError(f"augment must be inception, light or none; got {augment!r}")
    if hflip:
        ops.append(A.HorizontalFlip(p=0.5))
    if color_jitter > 0:
        j = color_jitter
        ops.append(A.ColorJitter(brightness=j, contrast=j, saturation=j, hue=0.0, p=0.8))
    return Transform(A.Compose(ops), f"train: {augment}")


def to_tensor(image: np.ndarray, mean, std) -> torch.Tensor:
    """HxWx3 uint8 -> normalised float ``[3, H, W]``: (x/255 - mean) / std."""
    t = torch.from_numpy(np.require(image, requirements=["C", "W"])).permute(2, 0, 1)
    t = t.float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return t.sub_(m).div_(s)


def _resize_side(resolution: int, eval_crop: float) -> int:
    if not 0 < eval_crop <= 1:
        raise ValueError(f"eval_crop must be in (0, 1]; got {eval_crop}")
    return round(resolution / eval_crop)


def eval_preprocessing(meta: dict, config: dict):
    """``(transform, mean, std)`` recorded in a checkpoint's meta (input size, central crop,
    normalisation) over its config, so converted peer weights run with their own."""
    model = config.get("model") or {}
    size = int(meta.get("input_size") or meta.get("resolution") or model.get("resolution") or 224)
    crop = float(meta.get("eval_crop") or (config.get("data") or {}).get("eval_crop")
                 or 0.875)
    mean = tuple(meta.get("mean") or (0.5, 0.5, 0.5))
    std = tuple(meta.get("std") or (0.5, 0.5, 0.5))
    return eval_transform(size, crop), mean, std
