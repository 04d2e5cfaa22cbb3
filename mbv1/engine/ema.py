"""Exponential moving average of model weights (``train.ema``).

``ema = d·ema + (1 − d)·w`` after every optimiser step, with ``d = min(decay, (1 + n)/(10 + n))``
so the average is not dominated by the random initialisation early on (the warm-up timm and
TF's ``ExponentialMovingAverage(num_updates=...)`` use). Integer buffers (BatchNorm's batch
counter) are copied. The average is what the engine evaluates and saves as ``model``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    """Args:
        model: the (unwrapped) model being trained.
        decay: the target decay, e.g. 0.9998.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"ema decay must be in (0, 1); got {decay}")
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        ema, new = self.module.state_dict(), model.state_dict()
        floats = [k for k, v in ema.items() if v.dtype.is_floating_point]
        torch._foreach_lerp_([ema[k] for k in floats], [new[k].detach() for k in floats], 1 - d)
        for k, v in ema.items():
            if not v.dtype.is_floating_point:
                v.copy_(new[k])

    def state_dict(self) -> dict:
        return {"updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict, weights: dict) -> None:
        self.updates = int(state["updates"])
        self.module.load_state_dict(weights)
