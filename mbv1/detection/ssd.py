"""SSD with a MobileNetV1 body, TF Object Detection API ``ssd_mobilenet_v1`` layout.

Feature maps: the body's ``conv11`` and ``conv13`` taps, then four extra layers, each a 1x1
conv to ``d/2`` channels and a 3x3 stride-2 conv to ``d`` (``d`` = 512, 256, 256, 128 at α=1;
TF's ``max(int(d·α), 16)``). One box predictor per map: 1x1 convs giving 4 box codes and
``num_classes + 1`` logits (0 = background) per anchor. At 300x300 the maps are 19, 10, 5, 3,
2, 1 (1917 anchors); at 512x512 32, 16, 8, 4, 2, 1 (5118).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from mbv1.backbone import MobileNetV1
from mbv1.backbone.layers import ConvBNAct
from mbv1.detection.anchors import AnchorConfig, generate_anchors, num_anchors_per_location

SCORINGS = ("sigmoid", "softmax")


@dataclass
class SSDConfig:
    """Everything that defines an SSD model; stored in checkpoints.

    Attributes:
        num_classes: object classes, background excluded (COCO: 90, the face model: 1).
        alpha: width multiplier of the body and the extra layers.
        extra_depths: output channels of the four extra layers at α=1.
        min_depth: TF's floor on scaled extra-layer depths.
        taps: body layers feeding the first two predictors.
        scoring: ``sigmoid`` (TF OD API ssd_mobilenet_v1) or ``softmax`` (original SSD).
        padding: ``same`` (TF-trained weights) or ``symmetric``.
    """

    num_classes: int = 90
    alpha: float = 1.0
    activation: str = "relu6"
    padding: str = "symmetric"
    bn_eps: float = 1e-3
    extra_depths: tuple[int, ...] = (512, 256, 256, 128)
    min_depth: int = 16
    taps: tuple[str, ...] = ("conv11", "conv13")
    scoring: str = "sigmoid"
    anchors: AnchorConfig = field(default_factory=AnchorConfig)

    def __post_init__(self):
        if self.scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {SCORINGS}, got {self.scoring!r}")
        if isinstance(self.anchors, dict):
            self.anchors = AnchorConfig(**{k: tuple(v) if isinstance(v, list) else v
                                           for k, v in self.anchors.items()})
        self.extra_depths = tuple(self.extra_depths)
        self.taps = tuple(self.taps)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["extra_depths"] = list(self.extra_depths)
        d["taps"] = list(self.taps)
        d["anchors"]["aspect_ratios"] = list(self.anchors.aspect_ratios)
        return d


class SSD(nn.Module):
    """SSD-MobileNetV1. ``forward(x [N,3,H,W])`` returns raw tensors in train and eval alike:
    ``box_codes [N, A, 4]`` (ty, tx, th, tw) and ``class_logits [N, A, num_classes + 1]``.
    ``anchors_for(x)`` gives the matching ``[A, 4]`` anchors (cy, cx, h, w), normalised."""

    def __init__(self, config: SSDConfig | None = None, **kw):
        super().__init__()
        config = config or SSDConfig(**kw)
        self.config = config
        bkw = dict(activation=config.activation, padding=config.padding, bn_eps=config.bn_eps)
        self.backbone = MobileNetV1(config.alpha, num_classes=0, **bkw)
        channels = {f.name: f.channels for f in self.backbone.feature_info}
        in_channels = [channels[t] for t in config.taps]

        def depth(d: float) -> int:
            return max(int(d * config.alpha), config.min_depth)

        self.extras = nn.ModuleList()
        prev = in_channels[-1]
        for d in config.extra_depths:
            self.extras.append(nn.Sequential(
                ConvBNAct(prev, depth(d / 2), 1, **bkw),
                ConvBNAct(depth(d / 2), depth(d), 3, 2, **bkw)))
            prev = depth(d)
            in_channels.append(prev)
        n_maps = len(in_channels)
        self.num_anchors = num_anchors_per_location(n_maps, config.anchors)
        k = config.num_classes + 1
        self.box_heads = nn.ModuleList(nn.Conv2d(c, a * 4, 1) for c, a in zip(in_channels, self.num_anchors))
        self.class_heads = nn.ModuleList(nn.Conv2d(c, a * k, 1) for c, a in zip(in_channels, self.num_anchors))
        for head in (*self.box_heads, *self.class_heads):
            head.cost_type = "pointwise"
            nn.init.normal_(head.weight, std=0.03)
            nn.init.zeros_(head.bias)
        self._anchor_cache: dict = {}

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.maps_with(x)[0]

    def maps_with(self, x: torch.Tensor, taps=()) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """``(the feature maps, {tap: body map})``: the detector's maps and, from the same body
        pass, the body layers ``taps`` (any, e.g. a finer one for RoI features)."""
        got = self.backbone.features(x, [*self.config.taps, *taps])
        maps = [got[t] for t in self.config.taps]
        y = maps[-1]
        for extra in self.extras:
            y = extra(y)
            maps.append(y)
        return maps, {t: got[t] for t in taps}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.predict(self.feature_maps(x))

    def predict(self, maps: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(box_codes, class_logits)`` of the :meth:`feature_maps` of a batch."""
        n = maps[0].shape[0]
        k = self.config.num_classes + 1
        codes, logits = [], []
        for fmap, box_head, class_head in zip(maps, self.box_heads, self.class_heads):
            # [N, A·4, H, W] → [N, H, W, A·4] → [N, H·W·A, 4]: anchors ordered row, column, box.
            codes.append(box_head(fmap).permute(0, 2, 3, 1).reshape(n, -1, 4))
            logits.append(class_head(fmap).permute(0, 2, 3, 1).reshape(n, -1, k))
        return torch.cat(codes, 1), torch.cat(logits, 1)

    def feature_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """Feature-map sizes for an input size, without running the model."""
        key = (height, width)
        if key not in self._anchor_cache:
            with torch.no_grad():
                was = self.training
                self.eval()
                p = next(self.parameters())
                maps = self.feature_maps(torch.zeros(1, 3, height, width, device=p.device, dtype=p.dtype))
                self.train(was)
            self._anchor_cache[key] = [tuple(m.shape[-2:]) for m in maps]
        return self._anchor_cache[key]

    def anchors_for(self, height: int, width: int, device=None) -> torch.Tensor:
        """``[A, 4]`` normalised (cy, cx, h, w) anchors for an input of this size."""
        sizes = self.feature_sizes(height, width)
        return generate_anchors(sizes, self.config.anchors, device or next(self.parameters()).device)

    def scores(self, class_logits: torch.Tensor) -> torch.Tensor:
        """Per-class scores ``[N, A, num_classes]`` (background column dropped)."""
        if self.config.scoring == "sigmoid":
            return torch.sigmoid(class_logits[..., 1:])
        return torch.softmax(class_logits, dim=-1)[..., 1:]


def build_model(meta: dict, model: dict | None = None) -> SSD:
    """The SSD a detection checkpoint holds: ``meta["ssd"]`` is its :class:`SSDConfig` (the one
    schema; :func:`upgrade_checkpoint` migrates the older one). ``model`` (the config's
    ``model`` section) is not needed: the SSD config carries the body settings."""
    from mbv1.errors import MBV1Error

    if not isinstance(meta.get("ssd"), dict):
        raise MBV1Error("the checkpoint meta has no 'ssd' (SSDConfig): not an mbv1 detection "
                        "checkpoint")
    return SSD(SSDConfig(**meta["ssd"]))


def upgrade_checkpoint(ckpt: dict) -> dict:
    """Older converted detectors (the face model before mbv1 0.1's single schema) kept the
    SSDConfig in ``config["model"]``; move it to ``meta["ssd"]``, as engine runs store it."""
    meta = dict(ckpt.get("meta") or {})
    if "ssd" not in meta:
        model = dict((ckpt.get("config") or {}).get("model") or {})
        if "num_classes" in model and "anchors" in model:
            meta["ssd"] = model
            config = dict(ckpt.get("config") or {})
            config["model"] = {k: model[k] for k in ("alpha", "activation", "padding", "bn_eps")
                               if k in model}
            return {**ckpt, "meta": meta, "config": config}
    return ckpt
