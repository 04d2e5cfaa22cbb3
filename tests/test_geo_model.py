"""Table 11's model: GeoModel, the neighbour-smoothed loss, prediction, costs, evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mbv1.backbone.mobilenet import MobileNetV1
from mbv1.datasets.augment import eval_transform
from mbv1.geo.cells import build_partition
from mbv1.geo.costs import cells_for_params, geo_costs
from mbv1.geo.data import read_csv
from mbv1.geo.model import (
    GeoLoss,
    GeoModel,
    build_geo_loss,
    build_geo_model,
    decode,
    evaluate,
    predict,
)
from mbv1.geo.sources import partition_dataset
from mbv1.geo.synthetic import make_synthetic_geo


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    s = make_synthetic_geo(tmp_path_factory.mktemp("geo"), num_train=48, num_test=12, size=32,
                           seed=0, write_exif=False)
    train = read_csv(s.train_csv)
    part = build_partition(train.lat, train.lon, t1=12, t2=2)
    return s, train, part


def test_forward_and_headless_backbone():
    model = build_geo_model(7, alpha=0.25)
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 7) and torch.isfinite(out).all()
    assert model.embed(x).shape == (2, model.backbone.num_features)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError):
        GeoModel(MobileNetV1(alpha=0.25, num_classes=10), 5)


def _dense_targets(target, neighbours, eps, num_classes):
    q = torch.zeros(len(target), num_classes)
    for r, t in enumerate(target.tolist()):
        nb = [n for n in neighbours[t].tolist() if n >= 0]
        if nb:
            q[r, t] = 1 - eps
            for n in nb:
                q[r, n] += eps / len(nb)
        else:
            q[r, t] = 1.0
    return q


def test_loss_matches_dense_soft_targets():
    torch.manual_seed(0)
    neighbours = torch.tensor([[1, 2, -1, -1], [0, -1, -1, -1], [0, 3, -1, -1],
                               [2, -1, -1, -1], [-1, -1, -1, -1]])
    logits = torch.randn(9, 5, requires_grad=True)
    target = torch.tensor([0, 1, 2, 3, 4, 0, 2, -1, 3])
    for eps in (0.0, 0.1, 0.4):
        out = GeoLoss(neighbours, eps)(logits, target)
        keep = target >= 0
        want = F.cross_entropy(logits[keep], _dense_targets(target[keep], neighbours, eps, 5))
        assert out["loss"].item() == pytest.approx(want.item(), rel=1e-6)
        assert out["ce"].item() == pytest.approx(F.cross_entropy(logits[keep], target[keep]).item())
    out = GeoLoss()(logits, torch.full((9,), -1))
    assert out["loss"].item() == 0.0
    out["loss"].backward()  # still differentiable
    with pytest.raises(ValueError):
        GeoLoss(None, 0.1)


def test_build_loss_uses_partition_neighbours(tiny_set):
    _, _, part = tiny_set
    loss = build_geo_loss(part, smoothing=0.2)
    assert torch.equal(loss.neighbours, torch.as_tensor(part.neighbours()))
    assert build_geo_loss(part).smoothing == 0.0


def test_decode_predicts_best_cell_centroid(tiny_set):
    _, _, part = tiny_set
    logits = torch.full((2, len(part)), -5.0)
    logits[0, 1], logits[0, 0] = 5.0, 4.0
    logits[1, len(part) - 1] = 3.0
    preds = decode(logits, part, k=2)
    assert preds[0].cells == [1, 0] and preds[0].tokens == part.tokens[:2][::-1]
    assert preds[0].probs[0] > preds[0].probs[1] > 0 and sum(preds[1].probs) <= 1.0
    assert (preds[0].lat, preds[0].lon) == (part.centroid_lat[1], part.centroid_lon[1])
    assert preds[1].cells[0] == len(part) - 1
    assert preds[0].place is not None and preds[0].place.distance_km < 500
    model = build_geo_model(len(part), alpha=0.25)
    got = predict(model, torch.randn(3, 3, 32, 32), part, k=3, name_places=False)
    assert len(got) == 3 and len(got[0].cells) == 3 and got[0].place is None
    assert model.training  # restored


def test_costs_beside_table11():
    assert cells_for_params() == 9554  # 13 M params at α = 1
    c = geo_costs(9554)
    assert c.body_params == 3_206_976 and c.final_layer_params == 1025 * 9554
    assert c.params == 12_999_826
    assert c.mult_adds == pytest.approx(580e6, rel=0.01)  # paper: 0.58 B
    assert "13.00 M params" in str(c) and "paper Table 11" in str(c)
    small = geo_costs(100, alpha=0.5, resolution=160)
    assert small.params == small.body_params + (512 + 1) * 100
    assert cells_for_params(2e6, alpha=0.5) == round((2e6 - small.body_params) / 513)


def test_overfit_one_batch():
    torch.manual_seed(0)
    model = build_geo_model(4, alpha=0.25, dropout=0.0)
    x = torch.randn(8, 3, 32, 32)
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    loss_fn = GeoLoss(torch.tensor([[1, -1], [0, -1], [3, -1], [2, -1]]), smoothing=0.1)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    first = None
    for _ in range(40):
        out = loss_fn(model(x), y)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        first = first if first is not None else out["ce"].item()
    assert out["ce"].item() < 0.2 * first
    with torch.no_grad():  # train-mode BatchNorm: eval statistics lag after 40 steps
        assert torch.equal(model(x).argmax(1), y)


def test_evaluate_end_to_end(tiny_set):
    s, train, part = tiny_set
    test = partition_dataset(read_csv(s.test_csv), part, eval_transform(32, 1.0))
    loader = torch.utils.data.DataLoader(test, batch_size=5)
    model = build_geo_model(len(part), alpha=0.25)
    metrics, cells = evaluate(model, loader, part)
    assert metrics.count == 12 and set(metrics.within) == {1, 25, 200, 750, 2500}
    assert sum(m.count for m in metrics.per_continent.values()) == 12
    assert 0.0 <= cells["cell_top1"] <= cells["cell_top5"] <= 100.0
    assert np.isfinite(metrics.median_km)
    trainset = partition_dataset(train, part, eval_transform(32, 1.0), drop_unassigned=True)
    assert len(trainset) == int(part.counts.sum())


def test_model_tied_to_its_partition(tiny_set):
    from mbv1.errors import MBV1Error
    from mbv1.geo.distance import haversine_km
    from mbv1.tasks.geolocation import prior_metrics

    s, train, part = tiny_set
    other = build_partition(train.lat, train.lon, t1=6, t2=1)
    model = build_geo_model(len(part), alpha=0.25, partition_sha256=part.sha256)
    x = torch.randn(2, 3, 32, 32)
    assert len(predict(model, x, part, name_places=False)) == 2
    with pytest.raises(MBV1Error, match="trained with partition sha256"):
        predict(model, x, other, name_places=False)
    loader = torch.utils.data.DataLoader(
        partition_dataset(read_csv(s.test_csv), other, eval_transform(32, 1.0)), batch_size=4)
    with pytest.raises(MBV1Error, match="trained with partition sha256"):
        evaluate(model, loader, other)
    untied = build_geo_model(len(part), alpha=0.25)  # no hash: only the cell count is checked
    with pytest.raises(MBV1Error, match="cells"):
        untied.check_partition(other)
    prior = prior_metrics(part, train.lat, train.lon, continents=False)
    best = int(np.argmax(part.counts))  # every photo placed at the most populous cell
    km = haversine_km(part.centroid_lat[best], part.centroid_lon[best], train.lat, train.lon)
    assert prior.count == len(train) and prior.median_km == pytest.approx(np.median(km))
    assert prior.within[2500] == pytest.approx(100.0 * np.mean(km <= 2500))
