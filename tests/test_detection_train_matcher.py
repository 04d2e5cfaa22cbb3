"""Argmax matcher: hand-made cases and a plain-Python reference of TF's argmax_matcher."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mbv1.detection.matcher import BACKGROUND, IGNORE, MatcherConfig, anchors_xyxy, match


def cyxhw(boxes_xyxy):
    b = torch.tensor(boxes_xyxy, dtype=torch.float32)
    return torch.stack([(b[:, 1] + b[:, 3]) / 2, (b[:, 0] + b[:, 2]) / 2,
                        b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]], -1)


# Four quadrant anchors plus a duplicate of the first (for ties).
ANCHORS = cyxhw([[0, 0, .5, .5], [.5, 0, 1, .5], [0, .5, .5, 1], [.5, .5, 1, 1], [0, 0, .5, .5]])


def test_anchor_conversion():
    assert torch.allclose(anchors_xyxy(ANCHORS[:2]), torch.tensor([[0, 0, .5, .5], [.5, 0, 1, .5]]))


def test_threshold_and_first_max_on_ties():
    gt = [torch.tensor([[0, 0, .5, .5], [.5, .5, 1, 1.]])]
    m = match(gt, ANCHORS)[0].tolist()
    # anchors 0 and 4 are identical: both reach IoU 1 → both matched to box 0.
    assert m == [0, BACKGROUND, BACKGROUND, 1, 0]


def test_duplicate_boxes_first_box_wins():
    gt = [torch.tensor([[.5, 0, 1, .5], [.5, 0, 1, .5]])]
    assert match(gt, ANCHORS)[0].tolist() == [BACKGROUND, 0, BACKGROUND, BACKGROUND, BACKGROUND]


def test_forced_match_below_threshold():
    small = torch.tensor([[.55, .55, .65, .65]])  # IoU 0.04 with anchor 3 only
    assert match([small], ANCHORS)[0].tolist() == [-1, -1, -1, 0, -1]
    cfg = MatcherConfig(force_match=False)
    assert match([small], ANCHORS, cfg)[0].tolist() == [-1] * 5


def test_forced_match_overrides_other_box():
    # Box 1 covers anchor 1 well (IoU 0.8); box 0 is tiny inside anchor 1 and forces it.
    # Both boxes force anchor 1: the first box wins, over the threshold match of box 1.
    gt = [torch.tensor([[.6, .1, .7, .2], [.5, .1, 1, .5]])]
    assert match(gt, ANCHORS)[0].tolist() == [-1, 0, -1, -1, -1]
    assert match([gt[0][1:]], ANCHORS)[0].tolist() == [-1, 0, -1, -1, -1]


def test_forced_tie_goes_to_first_anchor():
    gt = [torch.tensor([[0.1, 0.1, 0.2, 0.2]])]  # same IoU with anchors 0 and 4
    assert match(gt, ANCHORS)[0].tolist() == [0, -1, -1, -1, -1]


def test_ignore_band():
    cfg = MatcherConfig(matched_threshold=0.5, unmatched_threshold=0.3, force_match=False)
    gt = [torch.tensor([[0, 0, .5, .3]])]  # IoU 0.6 with anchors 0/4, 0 elsewhere
    assert match(gt, ANCHORS, cfg)[0].tolist() == [0, -1, -1, -1, 0]
    gt = [torch.tensor([[0, 0, .5, .2]])]  # IoU 0.4: inside the band
    assert match(gt, ANCHORS, cfg)[0].tolist() == [IGNORE, -1, -1, -1, IGNORE]
    # The forced match wins over the band.
    forced = MatcherConfig(matched_threshold=0.5, unmatched_threshold=0.3)
    assert match(gt, ANCHORS, forced)[0].tolist() == [0, -1, -1, -1, IGNORE]


def test_empty_and_mixed_batch():
    empty = torch.zeros(0, 4)
    assert match([empty, empty], ANCHORS).tolist() == [[-1] * 5] * 2
    m = match([empty, torch.tensor([[.5, .5, 1, 1.]]), empty], ANCHORS)
    assert m.shape == (3, 5) and m.dtype == torch.long
    assert m.tolist() == [[-1] * 5, [-1, -1, -1, 0, -1], [-1] * 5]


def test_bad_thresholds():
    with pytest.raises(ValueError):
        MatcherConfig(matched_threshold=0.3, unmatched_threshold=0.5)


def reference_match(gt: np.ndarray, anchors: np.ndarray, hi: float, lo: float) -> list[int]:
    """TF argmax_matcher with force_match_for_each_row, one anchor at a time."""
    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0

    if len(gt) == 0:
        return [-1] * len(anchors)
    sim = np.array([[iou(g, a) for a in anchors] for g in gt])
    out = []
    for j in range(len(anchors)):
        k = int(np.argmax(sim[:, j]))
        v = sim[k, j]
        out.append(k if v >= hi else (-1 if v < lo else -2))
    forced = {}
    for k in range(len(gt)):
        forced.setdefault(int(np.argmax(sim[k])), k)  # first box wins
    for j, k in forced.items():
        out[j] = k
    return out


def test_against_reference_on_random_boxes():
    rng = np.random.default_rng(0)
    anchors = torch.from_numpy(rng.uniform(0.05, 0.5, (300, 4)).astype(np.float32))
    anchors[:, :2] = torch.from_numpy(rng.uniform(0, 1, (300, 2)).astype(np.float32))
    axyxy = anchors_xyxy(anchors).double().numpy()
    gts = []
    for k in (0, 1, 7, 3):
        xy = rng.uniform(0, 0.8, (k, 2))
        wh = rng.uniform(0.02, 0.5, (k, 2))
        gts.append(torch.from_numpy(np.concatenate([xy, xy + wh], 1).astype(np.float32)))
    cfg = MatcherConfig(matched_threshold=0.5, unmatched_threshold=0.35)
    got = match(gts, anchors, cfg)
    for g, row in zip(gts, got):
        assert row.tolist() == reference_match(g.double().numpy(), axyxy, 0.5, 0.35)
