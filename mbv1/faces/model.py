"""The face student: one MobileNetV1 body, pluggable heads, one backbone pass.

Heads (each a linear layer on the pooled body features, all optional):

* ``gender``: 2 logits (male, female), like face-api's age/gender net;
* ``expression``: 7 logits (:data:`mbv1.teachers.face_api_nets.EXPRESSIONS`);
* ``age``: 1 value, years (regression);
* ``celeba``: 40 logits, CelebA's binary attributes (supervised, ``list_attr_celeba.txt``);
* ``embedding``: ``embedding_dim`` values, L2-normalised (Table 14's student). When the
  teacher's embedding has another size, ``project`` (a linear map to the teacher's size, then
  L2-normalised) is used by the loss only; inference returns ``embedding``.

``forward(x)`` returns a dict of raw tensors, the same in train and eval mode (plus
``embedding_teacher``, the projected embedding, when there is a projection).

Feature distillation (``hints``, FitNets): for each named body layer, a 1x1 convolution maps
the student's feature map to the teacher body's channels; in training mode ``forward`` adds
``hint_<layer>`` outputs for the loss. Like ``project``, they are never part of inference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mbv1.backbone.bodies import build_body
from mbv1.errors import MBV1Error

__all__ = ["HEADS", "FaceHeads", "FaceStudent", "HeadsConfig", "head_probabilities"]

HEADS = ("gender", "expression", "age", "celeba", "embedding")
CELEBA_ATTRIBUTES = 40


@dataclass
class HeadsConfig:
    """Which heads a student has and their sizes (stored in the checkpoint meta)."""

    heads: list[str] = field(default_factory=lambda: ["gender", "expression", "age"])
    embedding_dim: int = 128
    teacher_dim: int = 512
    celeba_attributes: int = CELEBA_ATTRIBUTES
    hints: dict[str, int] = field(default_factory=dict)  # body layer -> teacher channels

    def __post_init__(self):
        bad = [h for h in self.heads if h not in HEADS]
        if bad or not self.heads:
            raise MBV1Error(f"unknown face heads {bad or '(none)'}: choose from {', '.join(HEADS)}")
        if self.embedding_dim < 1 or self.teacher_dim < 1:
            raise MBV1Error("embedding sizes must be positive")

    def to_dict(self) -> dict:
        return asdict(self)


class FaceHeads:
    """The heads of :class:`HeadsConfig` on a pooled feature vector, shared by the face student
    (a MobileNetV1 of its own) and the shared face model (:mod:`mbv1.faces.shared`, RoI
    features of the face detector's body). State keys: ``heads.<name>``, ``project``."""

    heads: nn.ModuleDict
    project: nn.Linear | None

    def _build_heads(self, channels: int, heads: HeadsConfig) -> None:
        sizes = {"gender": 2, "expression": 7, "age": 1, "celeba": heads.celeba_attributes,
                 "embedding": heads.embedding_dim}
        self.heads = nn.ModuleDict({h: nn.Linear(channels, sizes[h]) for h in heads.heads})
        self.project = (nn.Linear(heads.embedding_dim, heads.teacher_dim, bias=False)
                        if "embedding" in heads.heads and heads.embedding_dim != heads.teacher_dim
                        else None)
        for lin in self.heads.values():
            nn.init.normal_(lin.weight, 0, 0.01)
            nn.init.zeros_(lin.bias)
        if "age" in self.heads:
            nn.init.constant_(self.heads["age"].bias, 30.0)  # start near adult ages, not 0

    def apply_priors(self, prior: dict | None) -> None:
        """Start the age and embedding heads at the training targets' priors (``meta["prior"]``)."""
        prior = prior or {}
        if "age" in prior:
            self.set_age_prior(prior["age"])
        if prior.get("embedding") is not None:
            self.set_embedding_prior(prior["embedding"])

    def set_age_prior(self, mean_age: float) -> None:
        """Start the age head at ``mean_age`` years (the training targets' mean)."""
        if "age" in self.heads:
            with torch.no_grad():
                self.heads["age"].bias.fill_(float(mean_age))

    def set_embedding_prior(self, mean_embedding) -> None:
        """Start the embedding head at the training targets' mean direction (the constant
        predictor), so that training adds what the faces tell apart on top of it. Only when the
        embedding lives in the teacher's space (no projection)."""
        if "embedding" in self.heads and self.project is None:
            m = torch.as_tensor(mean_embedding, dtype=torch.float32)
            head = self.heads["embedding"]
            if m.shape == head.bias.shape:
                with torch.no_grad():
                    head.bias.copy_(m)
                    head.weight.mul_(0.1)  # the face-dependent part starts small beside it

    def _heads(self, f: torch.Tensor, project: bool) -> dict[str, torch.Tensor]:
        out = {}
        for name, head in self.heads.items():
            y = head(f)
            if name == "age":
                y = y.squeeze(1)
            elif name == "embedding":
                y = F.normalize(y, dim=1)
                if project and self.project is not None:
                    out["embedding_teacher"] = F.normalize(self.project(y), dim=1)
            out[name] = y
        return out


class FaceStudent(FaceHeads, nn.Module):
    """MobileNetV1 (α, any input size) + the heads of ``heads``.

    Args:
        heads: a :class:`HeadsConfig`.
        alpha, activation, variant, padding, bn_eps: the body (:class:`MobileNetV1`).
        dropout: before the heads.
    """

    def __init__(self, heads: HeadsConfig, alpha: float = 1.0, activation: str = "relu6",
                 variant: str = "separable", padding: str = "symmetric", bn_eps: float = 1e-3,
                 dropout: float = 0.0, backbone: str = "mobilenet_v1"):
        super().__init__()
        self.heads_config = heads
        self.backbone = build_body(backbone, alpha=alpha, num_classes=0, activation=activation,
                                   variant=variant, padding=padding, bn_eps=bn_eps, dropout=0.0)
        c = self.backbone.num_features
        self.dropout = nn.Dropout(dropout)
        self._build_heads(c, heads)
        chans = {f.name: f.channels for f in self.backbone.feature_info}
        unknown = [t for t in heads.hints if t not in chans]
        if unknown:
            raise MBV1Error(f"unknown hint layers {unknown}: choose from {', '.join(chans)}")
        self.hints = nn.ModuleDict({t: nn.Conv2d(chans[t], c, 1) for t, c in heads.hints.items()})

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled body features ``[N, C]``."""
        return self.backbone.pool(self.backbone.forward_body(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x`` ``[N, 3, R, R]`` normalised → ``{head: tensor}``: logits for gender /
        expression / celeba, ``age [N]`` in years, ``embedding [N, D]`` unit length."""
        out = {}
        if self.hints and self.training:
            last = self.backbone.tap_names[-1]
            maps = self.backbone.features(x, [*self.hints, last])
            for t, conv in self.hints.items():
                out[f"hint_{t}"] = conv(maps[t])
            f = self.dropout(self.backbone.pool(maps[last]).flatten(1))
        else:
            f = self.dropout(self.features(x))
        return {**out, **self._heads(f, project=True)}

    def forward_heads_only(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The inference pass (no loss-only projection): what ``mbv1 faces`` runs, exports and
        the cost counter counts; the same outputs as :meth:`forward` in eval mode."""
        return self._heads(self.features(x), project=False)


def head_probabilities(keys: list[str], outputs) -> dict[str, np.ndarray]:
    """Raw head outputs (in ``keys`` order) as numpy: probabilities for gender / expression
    (softmax) and celeba (sigmoid), ``age`` and ``embedding`` as they are."""
    res = {}
    for k, v in zip(keys, outputs):
        v = v.float()
        if k in ("gender", "expression"):
            v = v.softmax(1)
        elif k == "celeba":
            v = v.sigmoid()
        res[k] = v.cpu().numpy()
    return res
