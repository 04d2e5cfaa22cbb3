"""Optimisation parts against hand computations: decay groups, TF RMSProp, schedules, EMA,
and the resumable, shardable sampler."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from mbv1.backbone import MobileNetV1
from mbv1.engine.config import TrainConfig
from mbv1.engine.ema import ModelEMA
from mbv1.engine.optim import RMSpropTF, build_optimizer, lr_factor, param_groups
from mbv1.engine.sampler import ResumableSampler
from mbv1.errors import MBV1Error


def test_weight_decay_skips_depthwise_norms_and_biases():
    model = MobileNetV1(0.25, num_classes=10)
    decay, exempt = param_groups(model, 4e-5, no_decay_depthwise=True, no_decay_norm=True)

    def ids(params):
        return {id(p) for p in params}

    assert id(model.conv1.depthwise.conv.weight) in ids(exempt["params"])
    assert id(model.conv1.pointwise.conv.weight) in ids(decay["params"])
    assert id(model.conv1.pointwise.bn.weight) in ids(exempt["params"])
    assert id(model.fc.bias) in ids(exempt["params"])
    assert id(model.fc.weight) in ids(decay["params"])
    assert exempt["weight_decay"] == 0.0 and decay["weight_decay"] == 4e-5
    n = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for g in (decay, exempt) for p in g["params"]) == n
    decay2, _ = param_groups(model, 4e-5, no_decay_depthwise=False, no_decay_norm=True)
    assert id(model.conv1.depthwise.conv.weight) in ids(decay2["params"])


def test_rmsprop_tf_matches_tensorflow_formula():
    """TF1 RMSProp: ms starts at 1, eps inside the sqrt, momentum over lr-scaled steps."""
    w0 = np.array([1.0, -2.0, 0.5])
    grads = [np.array([0.3, -0.1, 2.0]), np.array([-0.2, 0.4, 1.0])]
    lr, rho, mu, eps, wd = 0.1, 0.9, 0.9, 1.0, 0.01
    w, ms, mom = w0.copy(), np.ones(3), np.zeros(3)
    for g in grads:
        g = g + wd * w
        ms = rho * ms + (1 - rho) * g * g
        mom = mu * mom + lr * g / np.sqrt(ms + eps)
        w = w - mom
    p = nn.Parameter(torch.tensor(w0))
    opt = RMSpropTF([p], lr=lr, rho=rho, momentum=mu, eps=eps, weight_decay=wd)
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(p.detach().numpy(), w, rtol=1e-12)


@pytest.mark.parametrize("name", ["rmsprop", "sgd", "adamw"])
def test_each_optimizer_reduces_a_loss(name):
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    cfg = TrainConfig(optimizer=name, lr=0.05)
    opt = build_optimizer(model, cfg)
    x = torch.randn(32, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    first = None
    for _ in range(30):
        loss = ((model(x) - y) ** 2).mean()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * first


def test_schedules():
    spe = 10  # steps per epoch
    f = lr_factor(TrainConfig(schedule="tf-slim", epochs=10), spe)  # x0.94 every 2.5 epochs
    assert [f(s) for s in (0, 24, 25, 49, 50)] == [1, 1, 0.94, 0.94, 0.94 ** 2]
    f = lr_factor(TrainConfig(schedule="exponential", decay_rate=0.5, decay_epochs=1), spe)
    assert f(5) == pytest.approx(0.5 ** 0.5)
    f = lr_factor(TrainConfig(schedule="step", milestones=[2, 4], decay_rate=0.1), spe)
    assert [f(19), f(20), f(40)] == [1, pytest.approx(0.1), pytest.approx(0.01)]
    f = lr_factor(TrainConfig(schedule="cosine", epochs=4, warmup_epochs=1, min_lr_ratio=0.1), spe)
    assert [f(0), f(4), f(9)] == [0.1, 0.5, 1.0]  # linear warm-up to the full lr
    assert f(10) == pytest.approx(1.0) and f(25) == pytest.approx(0.1 + 0.9 * 0.5)
    assert f(40) == pytest.approx(0.1)
    with pytest.raises(MBV1Error, match="decay_epochs"):
        lr_factor(TrainConfig(schedule="step", decay_epochs=0), spe)


def test_ema_follows_weights_with_warmup():
    model = nn.Linear(2, 1, bias=False)
    nn.init.zeros_(model.weight)
    ema = ModelEMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # d = min(0.9, 2/11)
    assert ema.module.weight.flatten().tolist() == [pytest.approx(1 - 2 / 11)] * 2
    for _ in range(200):
        ema.update(model)
    assert ema.module.weight.flatten().tolist() == [pytest.approx(1.0, abs=1e-6)] * 2
    assert not ema.module.weight.requires_grad


def test_sampler_shards_keep_global_batches_and_resume():
    one = ResumableSampler(50, batch_size=8, seed=3)
    one.set_epoch(2)
    order = list(one)
    assert len(order) == 48 and len(set(order)) == 48  # 6 whole batches, no repeats
    batches = [set(order[i:i + 8]) for i in range(0, 48, 8)]
    shards = []
    for rank in range(2):
        s = ResumableSampler(50, batch_size=8, seed=3, world_size=2, rank=rank)
        s.set_epoch(2)
        shards.append(list(s))
    for k in range(6):  # each global batch = union of the ranks' local batches
        assert set(shards[0][4 * k:4 * k + 4]) | set(shards[1][4 * k:4 * k + 4]) == batches[k]
    one.set_epoch(2, start_batch=4)
    assert list(one) == order[32:]
    one.set_epoch(3)
    assert list(one) != order
    with pytest.raises(MBV1Error, match="divisible"):
        ResumableSampler(50, batch_size=7, world_size=2)
    with pytest.raises(MBV1Error, match="larger than the 5 training images"):
        ResumableSampler(5, batch_size=8)


def test_sample_seeds_are_independent_of_workers():
    from mbv1.seeding import sample_seed

    seeds = {sample_seed(0, e, i) for e in range(3) for i in range(100)}
    assert len(seeds) == 300 and sample_seed(0, 1, 5) == sample_seed(0, 1, 5)
    assert not math.isnan(sample_seed(2**40, 0, 0))
