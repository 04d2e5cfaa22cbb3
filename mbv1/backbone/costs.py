"""Params and mult-adds counted from the built modules themselves (paper Table 2 onwards).

Mult-adds are those of convolutions and fully connected layers (the paper's convention):
``out_h · out_w · out_c · (in_c / groups) · k_h · k_w`` per conv, ``in · out`` per FC.
Params are all trainable parameters (conv/FC weights and biases, BatchNorm γ and β); BatchNorm
running statistics are buffers and do not count. Each conv's params and its BatchNorm's are
grouped under the conv's Table 2 row: ``stem`` (Conv 3x3), ``depthwise`` (Conv DW 3x3),
``pointwise`` (Conv 1x1), ``conv`` (other full convs) and ``fc`` (Fully connected).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from mbv1.backbone.layers import infer_cost_type

COST_TYPES = ("stem", "depthwise", "pointwise", "conv", "fc")


@dataclass
class TypeCost:
    params: int = 0
    mult_adds: int = 0
    weights: int = 0  # conv/FC weight tensors only: Table 2's params column counts these


@dataclass
class Costs:
    """Totals and the per-type split; ``input_size`` is (height, width)."""

    input_size: tuple[int, int]
    params: int = 0
    mult_adds: int = 0
    weights: int = 0
    by_type: dict[str, TypeCost] = field(default_factory=lambda: {t: TypeCost() for t in COST_TYPES})

    def share(self, cost_type: str) -> tuple[float, float]:
        """(mult-adds %, params %) of one type as in Table 2, whose params column counts conv
        and FC weights only (no biases, no BatchNorm): that reproduces its figures exactly."""
        t = self.by_type[cost_type]
        return 100.0 * t.mult_adds / max(self.mult_adds, 1), 100.0 * t.weights / max(self.weights, 1)

    def to_dict(self) -> dict:
        return {
            "input_size": list(self.input_size),
            "params": self.params,
            "mult_adds": self.mult_adds,
            "weights": self.weights,
            "by_type": {k: {"params": v.params, "mult_adds": v.mult_adds, "weights": v.weights}
                        for k, v in self.by_type.items()},
        }


def _cost_type(module: nn.Module) -> str:
    if isinstance(module, nn.Linear):
        return "fc"
    return getattr(module, "cost_type", None) or infer_cost_type(module)


def count_costs(model: nn.Module, input_size: int | tuple[int, int], in_channels: int = 3,
                forward=None) -> Costs:
    """Count params and mult-adds of ``model`` for one image of ``input_size``.

    Args:
        model: any module built of Conv2d / Linear / BatchNorm layers.
        input_size: the side (or (height, width)) of the input image.
        in_channels: input channels.
        forward: optional callable ``forward(model, x)`` when ``model(x)`` is not the full pass.
    """
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    costs = Costs(input_size=size)
    hooks = []

    def on_forward(module, inputs, output):
        t = costs.by_type[_cost_type(module)]
        if isinstance(module, nn.Conv2d):
            per_out = (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
            madds = output[0].numel() * per_out
        else:
            madds = module.in_features * module.out_features * (output.numel() // output.shape[-1]
                                                                // output.shape[0])
        t.mult_adds += madds
        costs.mult_adds += madds

    last_type = "conv"
    for m in model.modules():
        own = sum(p.numel() for p in m.parameters(recurse=False))
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            last_type = _cost_type(m)
            hooks.append(m.register_forward_hook(on_forward))
            costs.by_type[last_type].weights += m.weight.numel()
            costs.weights += m.weight.numel()
        if own:
            costs.by_type[last_type].params += own
            costs.params += own
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters())
        x = torch.zeros(1, in_channels, *size, dtype=p.dtype, device=p.device)
        with torch.no_grad():
            forward(model, x) if forward else model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return costs
