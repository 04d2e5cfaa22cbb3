"""Optimisers, weight-decay groups and learning-rate schedules.

* ``rmsprop``: TensorFlow's RMSProp (:class:`RMSpropTF`), the paper's optimiser (section 4,
  "RMSprop with asynchronous gradient descent similar to Inception V3").
* ``sgd``: momentum SGD, TF-slim's public MobileNet recipe (lr 0.045 x0.94 every 2.5 epochs).
* ``adamw``: decoupled weight decay.

Weight decay skips depthwise filters (``no_decay_depthwise``: the paper, "little or no weight
decay on the depthwise filters since there are so few parameters in them") and norm / bias
parameters (``no_decay_norm``). Schedules are functions of the fractional epoch, stepped after
every optimiser step.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from mbv1.errors import MBV1Error

_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def is_depthwise(module: nn.Module) -> bool:
    return (isinstance(module, nn.Conv2d) and module.groups > 1
            and module.groups == module.in_channels)


def param_groups(model: nn.Module, weight_decay: float, no_decay_depthwise: bool = True,
                 no_decay_norm: bool = True) -> list[dict]:
    """Trainable parameters split into a decayed and an exempt group (named for logs)."""
    decay, exempt, seen = [], [], set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            norm_or_bias = isinstance(module, _NORMS) or p.ndim <= 1
            depthwise = is_depthwise(module) and name == "weight"
            if (no_decay_norm and norm_or_bias) or (no_decay_depthwise and depthwise):
                exempt.append(p)
            else:
                decay.append(p)
    if not decay and not exempt:
        raise MBV1Error("the model has no trainable parameters: model.freeze froze everything")
    return [{"params": decay, "weight_decay": weight_decay, "group": "decay"},
            {"params": exempt, "weight_decay": 0.0, "group": "no_decay"}]


class RMSpropTF(torch.optim.Optimizer):
    """RMSProp as TensorFlow 1 computes it (Inception V3, TF-slim, the MobileNet paper).

    Differences from ``torch.optim.RMSprop``: the mean square starts at 1 (not 0), epsilon is
    added inside the square root, and the momentum buffer accumulates lr-scaled steps::

        ms  = rho * ms + (1 - rho) * g^2
        mom = momentum * mom + lr * g / sqrt(ms + eps)
        w   = w - mom

    ``weight_decay`` adds ``wd * w`` to the gradient (TF's L2 regularisation loss wd/2·|w|²).
    """

    def __init__(self, params, lr: float = 0.045, rho: float = 0.9, momentum: float = 0.9,
                 eps: float = 1.0, weight_decay: float = 0.0):
        if lr < 0 or eps < 0 or not 0 <= rho < 1 or momentum < 0:
            raise ValueError(f"bad RMSpropTF settings lr={lr} rho={rho} momentum={momentum} "
                             f"eps={eps}")
        super().__init__(params, {"lr": lr, "rho": rho, "momentum": momentum, "eps": eps,
                                  "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, rho, mu, eps, wd = (group[k] for k in
                                    ("lr", "rho", "momentum", "eps", "weight_decay"))
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad if wd == 0 else p.grad.add(p, alpha=wd)
                state = self.state[p]
                if not state:
                    state["ms"] = torch.ones_like(p, memory_format=torch.preserve_format)
                    state["mom"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                ms, mom = state["ms"], state["mom"]
                ms.mul_(rho).addcmul_(g, g, value=1 - rho)
                mom.mul_(mu).addcdiv_(g, ms.add(eps).sqrt_(), value=lr)
                p.sub_(mom)
        return loss


def build_optimizer(model: nn.Module, train) -> torch.optim.Optimizer:
    """The optimiser of ``train`` (a :class:`~mbv1.engine.config.TrainConfig`)."""
    groups = param_groups(model, train.weight_decay, train.no_decay_depthwise, train.no_decay_norm)
    if train.optimizer == "rmsprop":
        return RMSpropTF(groups, lr=train.lr, rho=train.rmsprop_decay, momentum=train.momentum,
                         eps=train.rmsprop_eps)
    if train.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=train.lr, momentum=train.momentum,
                               nesterov=train.nesterov and train.momentum > 0)
    if train.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=train.lr, betas=tuple(train.adam_betas))
    raise MBV1Error(f"train.optimizer must be rmsprop, sgd or adamw; got {train.optimizer!r}")


def lr_factor(train, steps_per_epoch: int) -> Callable[[int], float]:
    """``step -> lr multiplier`` for the schedule of ``train`` (warm-up included)."""
    warm = train.warmup_epochs * steps_per_epoch
    total = train.epochs * steps_per_epoch
    rate, every = train.decay_rate, train.decay_epochs
    milestones = sorted(train.milestones)
    if train.schedule in ("step", "tf-slim", "exponential") and every <= 0 and not milestones:
        raise MBV1Error(f"train.decay_epochs must be > 0 for the {train.schedule} schedule")

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = step / steps_per_epoch  # epochs done, fractional
        if train.schedule == "constant":
            return 1.0
        if train.schedule == "step" and milestones:
            return rate ** sum(t >= m for m in milestones)
        if train.schedule in ("step", "tf-slim"):  # TF-slim: exponential_decay(staircase=True)
            return rate ** math.floor(t / every)
        if train.schedule == "exponential":
            return rate ** (t / every)
        if train.schedule == "cosine":
            done = min(1.0, (step - warm) / max(1.0, total - warm))
            floor = train.min_lr_ratio
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * done))
        raise MBV1Error(f"unknown train.schedule {train.schedule!r}")

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, train, steps_per_epoch: int) -> LambdaLR:
    """A per-step LambdaLR; its state (the step count) is saved in checkpoints."""
    return LambdaLR(optimizer, lr_factor(train, steps_per_epoch))
