"""SSD training augmentation and the evaluation resize (albumentations through mbv1.datasets.augment).

Training (SSD, Liu et al. 2016 §2.2 and its Caffe/TF implementations), in order:

1. photometric distortion: brightness ±12.5 %, contrast and saturation ×[0.5, 1.5], hue ±0.05
   turn (SSD's 32/255 brightness delta, 0.5–1.5 contrast/saturation, 18° hue), with p=0.5;
2. random expand (zoom out) with p=0.5: the image placed at random on a canvas up to
   ``expand_max`` times larger filled with the dataset mean;
3. random crop with IoU constraints (SSD's sampler): pick one of {whole image, min IoU 0.1,
   0.3, 0.5, 0.7, 0.9, no constraint}; try up to 50 crops of 0.3–1 of each side with aspect
   ratio in [0.5, 2] until one overlaps some box with at least that IoU and contains the centre
   of at least one box; boxes whose centre falls outside the crop are dropped;
4. horizontal flip with p=0.5, then a resize to the input size.

Boxes stay pixel xyxy, clipped to the image, with the labels kept aligned; boxes narrower or
shorter than ``min_box_px`` in the output are dropped. Steps 2–3 are numpy; 1 and 4 are an
albumentations ``Compose`` with bbox handling. Every call takes an explicit per-sample seed
(the engine's ``sample_seed(seed, epoch, index)``), so augmentation never reads a global RNG
and does not depend on the DataLoader's workers.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

MIN_IOUS = (None, 0.1, 0.3, 0.5, 0.7, 0.9, float("-inf"))  # None = keep the whole image


def _size(size: int | Sequence[int]) -> tuple[int, int]:
    """``size`` → (height, width)."""
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def _iou(boxes: np.ndarray, rect: np.ndarray) -> np.ndarray:
    """IoU ``[K]`` of pixel xyxy ``boxes [K, 4]`` with one rectangle ``[4]``."""
    lt = np.maximum(boxes[:, :2], rect[:2])
    rb = np.minimum(boxes[:, 2:], rect[2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    return inter / (area + np.prod(rect[2:] - rect[:2]) - inter + 1e-12)


def filter_boxes(boxes: np.ndarray, labels: np.ndarray, width: int, height: int,
                 min_box_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Clip pixel xyxy boxes to the image and drop those ≤ ``min_box_px`` wide or high."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels = np.asarray(labels, np.int64).reshape(-1)
    boxes = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
    keep = ((boxes[:, 2] - boxes[:, 0]) > min_box_px) & ((boxes[:, 3] - boxes[:, 1]) > min_box_px)
    return boxes[keep], labels[keep]


class Resize:
    """Evaluation transform: resize to ``size`` (aspect ratio not kept, as TF's SSD), bilinear.

    ``(image uint8 HxWx3, boxes px xyxy [K, 4], labels [K], seed=None) → same at the new
    size`` (the seed is ignored).
    """

    def __init__(self, size: int | Sequence[int]):
        self.height, self.width = _size(size)

    def __call__(self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
                 seed: int | None = None):
        h, w = image.shape[:2]
        out = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
        scale = np.array([self.width / w, self.height / h] * 2, np.float32)
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4) * scale
        return out, boxes, np.asarray(labels, np.int64).reshape(-1)


class SSDAugment:
    """SSD training augmentation; see the module docstring.

    Args:
        size: output ``int`` or ``(height, width)``.
        mean: per-channel mean in [0, 1] (RGB), the expand canvas colour.
        expand_max: largest zoom-out factor (1 disables the expand).
        photometric, crop, hflip: turn the steps on or off.
        min_box_px: boxes at most this many pixels wide or high in the output are dropped.
        seed: seed of the draws of calls that bring no per-sample seed.
    """

    def __init__(self, size: int | Sequence[int], mean: Sequence[float] = (0.5, 0.5, 0.5),
                 expand_max: float = 4.0, photometric: bool = True, crop: bool = True,
                 hflip: bool = True, min_box_px: float = 2.0, seed: int = 0):
        from mbv1.datasets.augment import albumentations

        A = albumentations()

        self.height, self.width = _size(size)
        self.fill = np.clip(np.asarray(mean, np.float64) * 255.0, 0, 255).astype(np.uint8)
        self.expand_max, self.crop, self.min_box_px = float(expand_max), crop, min_box_px
        steps = []
        if photometric:
            steps.append(A.ColorJitter(brightness=0.125, contrast=0.5, saturation=0.5, hue=0.05,
                                       p=0.5))
        if hflip:
            steps.append(A.HorizontalFlip(p=0.5))
        steps.append(A.Resize(self.height, self.width, interpolation=cv2.INTER_LINEAR))
        self._compose = A.Compose(steps, bbox_params=A.BboxParams(
            format="pascal_voc", label_fields=["labels"], clip=True, filter_invalid_bboxes=True))
        self.rng = np.random.default_rng(seed)  # used when a call brings no seed

    def _reseed(self, seed: int | None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._compose.set_random_seed(int(self.rng.integers(2**31)))

    def expand(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Zoom out onto a mean-filled canvas, with p=0.5."""
        if self.expand_max <= 1.0 or self.rng.random() < 0.5:
            return image, boxes
        h, w = image.shape[:2]
        ratio = self.rng.uniform(1.0, self.expand_max)
        ch, cw = int(h * ratio), int(w * ratio)
        top, left = int(self.rng.uniform(0, ch - h)), int(self.rng.uniform(0, cw - w))
        canvas = np.empty((ch, cw, 3), np.uint8)
        canvas[:] = self.fill
        canvas[top:top + h, left:left + w] = image
        return canvas, boxes + np.array([left, top, left, top], np.float32)

    def random_crop(self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray):
        """SSD's min-IoU crop sampler (Caffe ``batch_sampler``: any box satisfies)."""
        h, w = image.shape[:2]
        min_iou = MIN_IOUS[self.rng.integers(len(MIN_IOUS))]
        if min_iou is None:
            return image, boxes, labels
        for _ in range(50):
            cw, chh = self.rng.uniform(0.3 * w, w), self.rng.uniform(0.3 * h, h)
            if not 0.5 <= chh / cw <= 2.0:
                continue
            left, top = self.rng.uniform(0, w - cw), self.rng.uniform(0, h - chh)
            rect = np.array([int(left), int(top), int(left + cw), int(top + chh)], np.float32)
            if rect[2] - rect[0] < 2 or rect[3] - rect[1] < 2:
                continue
            if len(boxes) == 0:  # a negative image: any crop will do
                mask = np.zeros(0, bool)
            else:
                if _iou(boxes, rect).max() < min_iou:
                    continue
                centres = (boxes[:, :2] + boxes[:, 2:]) / 2
                mask = np.all((centres > rect[:2]) & (centres < rect[2:]), axis=1)
                if not mask.any():
                    continue
            x0, y0, x1, y1 = rect.astype(int)
            crop = image[y0:y1, x0:x1]
            kept = boxes[mask].copy()
            kept = np.clip(kept - [x0, y0, x0, y0], 0, [x1 - x0, y1 - y0] * 2).astype(np.float32)
            return crop, kept, labels[mask]
        return image, boxes, labels

    def __call__(self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
                 seed: int | None = None):
        """``(image uint8 HxWx3, boxes px xyxy [K, 4], labels [K])`` → same at the output size.

        ``seed``: this sample's seed (``mbv1.seeding.sample_seed(seed, epoch, index)``),
        making its augmentation a pure function of it; ``None`` continues the transform's own
        stream (seeded by the constructor).
        """
        self._reseed(seed)
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        labels = np.asarray(labels, np.int64).reshape(-1)
        image, boxes = self.expand(image, boxes)
        if self.crop:
            image, boxes, labels = self.random_crop(image, boxes, labels)
        h, w = image.shape[:2]
        boxes, labels = filter_boxes(boxes, labels, w, h, 0.0)
        out = self._compose(image=np.ascontiguousarray(image), bboxes=boxes, labels=labels)
        return (out["image"],) + filter_boxes(out["bboxes"], out["labels"], self.width,
                                              self.height, self.min_box_px)


def train_transform(size: int | Sequence[int], mean: Sequence[float] = (0.5, 0.5, 0.5),
                    seed: int = 0, **kw) -> SSDAugment:
    """The SSD training transform (:class:`SSDAugment`)."""
    return SSDAugment(size, mean, seed=seed, **kw)


def eval_transform(size: int | Sequence[int]) -> Resize:
    """The evaluation transform: resize only."""
    return Resize(size)
