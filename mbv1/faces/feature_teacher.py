"""A pretrained MobileNetV1 body as a feature teacher for the face students (FitNets hints).

The paper distils outputs; with a few dozen people that teaches a small body only the people
it sees. A body pretrained on many faces (``face-ssd``: the α=1 body of the face detector,
trained on WIDER FACE) knows generic face features; matching its feature maps layer by layer
(``distill.feature_teacher``, ``distill.feature_layers``) hands them to a student of any α,
which no weight copy can (the widths differ). The teacher runs on the student's own (augmented)
input tensor, converted to the teacher's normalisation, frozen, outside DDP.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mbv1.backbone.mobilenet import MobileNetV1
from mbv1.errors import MBV1Error

__all__ = ["BodyFeatureTeacher", "feature_loss", "load_feature_teacher"]


class BodyFeatureTeacher(nn.Module):
    """``forward(x)`` → ``{layer: feature map}`` of a frozen MobileNetV1 body.

    ``x`` is normalised with the student's ``(mean, std)`` (of pixel/255); it is converted to
    the teacher's own before the body runs.
    """

    def __init__(self, body: MobileNetV1, layers: list[str], student_norm: tuple, teacher_norm: tuple,
                 source: str = ""):
        super().__init__()
        self.body, self.layers, self.source = body, list(layers), source
        (sm, ss), (tm, ts) = student_norm, teacher_norm
        # x_t = ((x·s + m) − m_t) / s_t  =  x · scale + shift, per channel
        scale = torch.tensor(ss, dtype=torch.float32) / torch.tensor(ts, dtype=torch.float32)
        shift = (torch.tensor(sm, dtype=torch.float32) - torch.tensor(tm, dtype=torch.float32)) / \
            torch.tensor(ts, dtype=torch.float32)
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", shift.view(1, 3, 1, 1), persistent=False)

    @property
    def channels(self) -> dict[str, int]:
        info = {f.name: f.channels for f in self.body.feature_info}
        return {t: info[t] for t in self.layers}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.body.features(x * self.scale + self.shift, self.layers)


def load_feature_teacher(spec: str, layers: list[str], student_mean, student_std) -> BodyFeatureTeacher:
    """``spec``: ``face-ssd`` or an mbv1 checkpoint / run folder / peer weights file holding a
    MobileNetV1 body (anything ``model.init`` reads)."""
    from mbv1.backbone.bodies import build_body
    from mbv1.backbone.pretrained import body_prefix, init_alpha, read_init

    init = read_init(spec)
    prefix = body_prefix(init.state)
    if prefix is None:
        raise MBV1Error(f"distill.feature_teacher={spec}: {init.source} has no MobileNetV1 body")
    body = build_body(init.body, alpha=init_alpha(init), num_classes=0, **init.backbone)
    state = {k[len(prefix):]: v for k, v in init.state.items()
             if k.startswith(prefix) and not k[len(prefix):].startswith("fc.")}
    missing, _ = body.load_state_dict(state, strict=False)
    if missing:
        raise MBV1Error(f"distill.feature_teacher={spec}: body weights missing {missing[:3]}")
    unknown = [t for t in layers if t not in body.tap_names]
    if unknown or not layers:
        raise MBV1Error(f"distill.feature_layers {unknown or '(none)'}: choose from "
                        f"{', '.join(body.tap_names)}")
    norm = (init.mean or (0.5,) * 3, init.std or (0.5,) * 3)
    return BodyFeatureTeacher(body.eval(), layers, (tuple(student_mean), tuple(student_std)),
                              norm, init.source)


def feature_loss(student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean squared error between each projected student map and the teacher's (the teacher's
    map pooled to the student's size if they differ), averaged over layers."""
    losses = []
    for layer, s in student.items():
        t = teacher[layer].float()
        if t.shape[-2:] != s.shape[-2:]:
            t = F.adaptive_avg_pool2d(t, s.shape[-2:])
        losses.append(F.mse_loss(s.float(), t))
    return torch.stack(losses).mean()
