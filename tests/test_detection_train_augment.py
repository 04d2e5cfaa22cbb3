"""SSD augmentation: boxes valid and aligned under many draws, negatives pass, seeds repeat."""

from __future__ import annotations

import numpy as np
import pytest

from mbv1.detection.augment import SSDAugment, eval_transform


@pytest.fixture(scope="module")
def aug():
    return SSDAugment((96, 128), mean=(0.2, 0.4, 0.6), min_box_px=2.0, seed=0)


def labelled_image(rng, h=90, w=120, k=4):
    """An image where box i is filled with value 10·(label) so alignment can be checked."""
    img = np.zeros((h, w, 3), np.uint8)
    boxes, labels = [], []
    for i in range(k):
        x0, y0 = rng.uniform(0, w - 20), rng.uniform(0, h - 20)
        boxes.append([x0, y0, x0 + rng.uniform(8, 40), y0 + rng.uniform(8, 30)])
        labels.append(i + 1)
    return img, np.clip(np.array(boxes, np.float32), 0, [w, h, w, h]), np.array(labels)


def test_boxes_valid_and_aligned_under_many_draws(aug):
    rng = np.random.default_rng(1)
    seen_crop = seen_expand = 0
    for trial in range(200):
        img, boxes, labels = labelled_image(rng)
        widths = dict(zip(labels.tolist(), (boxes[:, 2] - boxes[:, 0]).tolist()))
        out, b, lb = aug(img, boxes, labels, seed=trial)
        assert out.shape == (96, 128, 3) and out.dtype == np.uint8
        assert b.shape == (len(lb), 4) and lb.dtype == np.int64 and b.dtype == np.float32
        assert (b >= 0).all() and (b[:, [0, 2]] <= 128).all() and (b[:, [1, 3]] <= 96).all()
        assert ((b[:, 2] - b[:, 0]) > 2).all() and ((b[:, 3] - b[:, 1]) > 2).all()
        assert len(set(lb.tolist())) == len(lb) and set(lb.tolist()) <= set(labels.tolist())
        # Aligned: a kept box can only have shrunk (crop) or been scaled uniformly in x.
        for box, label in zip(b, lb):
            assert box[2] - box[0] <= widths[label] * 128 / 30 + 1e-3  # ≤ widest zoom-in
        seen_crop += len(lb) < len(labels)
        seen_expand += (out == np.array([51, 102, 153], np.uint8)).all(-1).mean() > 0.3
    assert seen_crop > 10 and seen_expand > 10  # both steps really happen


def test_box_content_follows_the_box(aug):
    """Paint each box with its label's colour: after any augmentation, the box centre still
    shows its colour (flip, crop, expand and resize moved box and pixels together)."""
    colours = {1: (250, 0, 0), 2: (0, 250, 0), 3: (0, 0, 250)}
    checked = 0
    aug_no_colour = SSDAugment(64, photometric=False, seed=0)
    for trial in range(100):
        img = np.full((80, 100, 3), 128, np.uint8)
        boxes = np.array([[5, 5, 35, 35], [60, 10, 95, 45], [20, 45, 60, 78]], np.float32)
        for (x0, y0, x1, y1), c in zip(boxes.astype(int), colours.values()):
            img[y0:y1, x0:x1] = c
        out, b, lb = aug_no_colour(img, boxes, np.array([1, 2, 3]), seed=trial)
        for (x0, y0, x1, y1), label in zip(b, lb):
            if min(x1 - x0, y1 - y0) < 6:
                continue
            cy, cx = int((y0 + y1) / 2), int((x0 + x1) / 2)
            assert np.abs(out[cy, cx].astype(int) - colours[int(label)]).max() < 40
            checked += 1
    assert checked > 100


def test_no_boxes_passes_through(aug):
    img = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    for seed in range(30):
        out, b, lb = aug(img, np.zeros((0, 4), np.float32), np.zeros(0, np.int64), seed=seed)
        assert out.shape == (96, 128, 3) and b.shape == (0, 4) and lb.shape == (0,)


def test_seeded_calls_repeat(aug):
    img, boxes, labels = labelled_image(np.random.default_rng(5))
    a = aug(img, boxes, labels, seed=42)
    b = aug(img, boxes, labels, seed=42)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    others = [aug(img, boxes, labels, seed=s)[1] for s in range(43, 53)]
    assert any(o.shape != a[1].shape or not np.array_equal(o, a[1]) for o in others)


def test_eval_transform_resizes_only():
    img = np.zeros((50, 100, 3), np.uint8)
    out, b, lb = eval_transform(64)(img, np.array([[10, 5, 60, 45]], np.float32), np.array([2]))
    assert out.shape == (64, 64, 3) and lb.tolist() == [2]
    assert np.allclose(b, [[6.4, 6.4, 38.4, 57.6]])
