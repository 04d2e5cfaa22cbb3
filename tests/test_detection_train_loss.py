"""SSD loss: hard-negative mining on hand-made losses, a per-anchor reference, overfitting."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mbv1.detection.box_coder import encode
from mbv1.detection.loss import LossConfig, assign_targets, hard_negative_mask, ssd_loss
from mbv1.detection.matcher import match
from mbv1.detection.ssd import SSD, SSDConfig


def T(x, dtype=None):
    return torch.tensor(x, dtype=dtype)


def test_mining_keeps_three_hardest_negatives_per_positive():
    loss = T([[0.1, 0.9, 0.5, 0.3, 0.8, 0.2, 0.7, 0.95]])
    pos = T([[0, 0, 0, 0, 0, 0, 0, 1]], torch.bool)
    ign = T([[0, 1, 0, 0, 0, 0, 0, 0]], torch.bool)  # the 0.9 anchor is ignored
    neg = ~pos & ~ign
    kept = hard_negative_mask(loss, pos, neg, 3.0, 0)
    # negatives ranked: 0.8 (4), 0.7 (6), 0.5 (2), 0.3, 0.2, 0.1 → top three
    assert kept.tolist() == [[False, False, True, False, True, False, True, False]]


def test_mining_per_image_ratio_and_min_negatives():
    loss = T([[5., 4, 3, 2, 1, 0], [0., 1, 2, 3, 4, 5], [1., 1, 1, 1, 1, 1]])
    pos = T([[0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], torch.bool)
    neg = ~pos
    # 0 positives and min 0 → nothing; 1 positive → 3 hardest; ties → lowest indices.
    kept = hard_negative_mask(loss, pos, neg, 3.0, 0)
    assert kept.sum(1).tolist() == [0, 3, 0]
    assert kept[1].tolist() == [False, False, False, True, True, True]
    kept = hard_negative_mask(loss, pos, neg, 3.0, 2)
    assert kept.sum(1).tolist() == [2, 3, 2]
    assert kept[0].tolist() == [True, True, False, False, False, False]
    assert kept[2].tolist() == [True, True, False, False, False, False]
    # A fractional ratio floors (TF casts to int); fewer negatives than asked → all of them.
    assert hard_negative_mask(loss, pos, neg, 1.5, 0).sum(1).tolist() == [0, 1, 0]
    assert hard_negative_mask(loss, pos, neg, 100.0, 0).sum(1).tolist() == [0, 5, 0]


def anchors_grid(n=6):
    c = (torch.arange(n) + 0.5) / n
    cy, cx = torch.meshgrid(c, c, indexing="ij")
    s = torch.full_like(cy, 2.0 / n)
    return torch.stack([cy, cx, s, s], -1).reshape(-1, 4)


def reference_loss(codes, logits, anchors, boxes, labels, scoring):
    """Per-image, per-anchor loops: positives' Huber + mined classification, / matches."""
    loc_sum = cls_sum = 0.0
    npos = 0
    for i in range(codes.shape[0]):
        m = match([boxes[i]], anchors)[0]
        lab = torch.zeros(len(anchors), dtype=torch.long)
        per_anchor_cls = []
        for a in range(len(anchors)):
            if m[a] >= 0:
                lab[a] = labels[i][m[a]]
                t = encode(boxes[i][m[a]], anchors[a])
                loc_sum += F.smooth_l1_loss(codes[i, a], t, reduction="sum").item()
            if scoring == "sigmoid":
                oh = F.one_hot(lab[a], logits.shape[-1]).float()
                c = F.binary_cross_entropy_with_logits(logits[i, a], oh, reduction="sum")
            else:
                c = F.cross_entropy(logits[i, a][None], lab[a][None])
            per_anchor_cls.append(c.item())
        p = [a for a in range(len(anchors)) if m[a] >= 0]
        negs = sorted((a for a in range(len(anchors)) if m[a] == -1),
                      key=lambda a: -per_anchor_cls[a])[: 3 * len(p)]
        cls_sum += sum(per_anchor_cls[a] for a in p + negs)
        npos += len(p)
    n = max(npos, 1)
    return loc_sum / n, cls_sum / n, npos


@pytest.mark.parametrize("scoring", ["sigmoid", "softmax"])
def test_loss_matches_reference(scoring):
    g = torch.Generator().manual_seed(0)
    anchors = anchors_grid()
    boxes = [T([[0.1, 0.1, 0.4, 0.45], [0.5, 0.6, 0.9, 0.95]]), torch.zeros(0, 4),
             T([[0.3, 0.2, 0.62, 0.5]])]
    labels = [T([1, 3]), torch.zeros(0, dtype=torch.long), T([2])]
    codes = torch.randn(3, len(anchors), 4, generator=g)
    logits = torch.randn(3, len(anchors), 4, generator=g)
    out = ssd_loss(codes, logits, anchors, {"boxes": boxes, "labels": labels}, scoring)
    loc, cls, npos = reference_loss(codes, logits, anchors, boxes, labels, scoring)
    assert out["num_pos"].item() == npos
    assert out["loc"].item() == pytest.approx(loc, rel=1e-5)
    assert out["cls"].item() == pytest.approx(cls, rel=1e-5)
    assert out["loss"].item() == pytest.approx(loc + cls, rel=1e-5)
    # A list of per-image dicts is accepted too.
    again = ssd_loss(codes, logits, anchors,
                     [{"boxes": b, "labels": lb} for b, lb in zip(boxes, labels)], scoring)
    assert torch.equal(again["loss"], out["loss"])


def test_no_boxes_at_all_is_finite_and_zero_with_no_min_negatives():
    anchors = anchors_grid()
    codes = torch.randn(2, len(anchors), 4, requires_grad=True)
    logits = torch.randn(2, len(anchors), 3, requires_grad=True)
    empty = {"boxes": [torch.zeros(0, 4)] * 2, "labels": [torch.zeros(0, dtype=torch.long)] * 2}
    out = ssd_loss(codes, logits, anchors, empty)
    assert out["loss"].item() == 0.0 and out["num_pos"].item() == 0
    out = ssd_loss(codes, logits, anchors, empty, config=LossConfig(min_negatives=4))
    assert out["loss"].item() > 0
    out["loss"].backward()
    assert torch.isfinite(logits.grad).all()


def test_assign_targets_labels_and_codes():
    anchors = anchors_grid(2)  # 4 quadrant anchors of size 1 (overlapping)
    boxes = [T([[0.0, 0.0, 0.5, 0.5]])]
    m = match(boxes, anchors)
    codes, labels = assign_targets(boxes, [T([7])], anchors, m)
    assert labels.tolist() == [[7 if j >= 0 else 0 for j in m[0].tolist()]]
    pos = m[0] >= 0
    assert torch.allclose(codes[0, pos], encode(boxes[0].expand(int(pos.sum()), 4), anchors[pos]))
    assert (codes[0, ~pos] == 0).all()


def test_loss_goes_down_overfitting_one_batch():
    torch.manual_seed(0)
    model = SSD(SSDConfig(num_classes=3, alpha=0.25))
    x = torch.randn(2, 3, 128, 128)
    targets = {"boxes": [T([[0.1, 0.1, 0.5, 0.6], [0.55, 0.5, 0.95, 0.9]]), T([[0.2, 0.3, 0.8, 0.7]])],
               "labels": [T([1, 2]), T([3])]}
    anchors = model.anchors_for(128, 128)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    model.train()
    for _ in range(12):
        codes, logits = model(x)
        out = ssd_loss(codes, logits, anchors, targets, model.config.scoring)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert losses[-1] < 0.5 * losses[0], losses
