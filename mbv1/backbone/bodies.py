"""The bodies mbv1 builds, by name (``model.backbone``): MobileNetV1 (the paper) and MobileNetV2
(Sandler et al. 2018). Both keep one contract (``features(x, taps)``, ``feature_info``,
``tap_names``, ``blocks()``, ``forward_body`` / ``forward_head``, ``reset_classifier``,
``num_features``, ``detection_taps``), so a task builds either through :func:`build_body` and
never asks which one it holds."""

from __future__ import annotations

from torch import nn

from mbv1.backbone.mobilenet import BackboneConfig, MobileNetV1
from mbv1.backbone.mobilenet_v2 import MobileNetV2

BODIES: dict[str, type[nn.Module]] = {"mobilenet_v1": MobileNetV1, "mobilenet_v2": MobileNetV2}
BODY_TYPES: tuple[type[nn.Module], ...] = tuple(BODIES.values())
DEFAULT_BODY = "mobilenet_v1"


def build_body(backbone: str = DEFAULT_BODY, **kw) -> nn.Module:
    """A body by name with the constructor arguments ``kw`` (alpha, num_classes, activation,
    variant, padding, bn_eps, dropout, in_channels)."""
    try:
        cls = BODIES[backbone or DEFAULT_BODY]
    except KeyError:
        raise ValueError(f"backbone must be one of {', '.join(BODIES)}; got {backbone!r}") from None
    return cls(**kw)


def body_name(body: nn.Module) -> str:
    """The registry name of a body module."""
    for name, cls in BODIES.items():
        if isinstance(body, cls):
            return name
    raise TypeError(f"{type(body).__name__} is not an mbv1 body")


def build_backbone(config: BackboneConfig | dict, num_classes: int = 0, **kw) -> nn.Module:
    """Build the body a :class:`BackboneConfig` (or its dict form) names."""
    if isinstance(config, dict):
        config = BackboneConfig(**config)
    return build_body(**config.to_dict(), num_classes=num_classes, **kw)
