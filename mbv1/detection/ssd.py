"""SSD on a MobileNet body, TF Object Detection API layout (``ssd_mobilenet_v1``,
``ssdlite_mobilenet_v2`` and their crossings).

Feature maps: two body taps (the body's ``detection_taps``: MobileNetV1 ``conv11`` and
``conv13``; MobileNetV2 ``block13.expand`` and ``conv_head``), then four extra layers, each a
1x1 conv to ``d/2`` channels and a 3x3 stride-2 conv to ``d`` (``d`` = 512, 256, 256, 128 at α=1;
TF's ``max(int(d·α), 16)``). One box predictor per map giving 4 box codes and
``num_classes + 1`` logits (0 = background) per anchor. At 300x300 the maps are 19, 10, 5, 3,
2, 1 (1917 anchors); at 512x512 32, 16, 8, 4, 2, 1 (5118).

``head="conv"`` (SSD): the extras' 3x3 convs are full convs and each predictor is a 1x1 conv.
``head="ssdlite"`` (SSDLite, Sandler et al. 2018, section 6.2): the extras' 3x3 convs are
depthwise separable, and each predictor is a 3x3 depthwise conv + BatchNorm + ReLU6 followed by
the 1x1 conv (one such pair for the boxes, one for the classes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from mbv1.backbone.bodies import BODIES, build_body
from mbv1.backbone.layers import ConvBNAct, DepthwiseSeparable
from mbv1.detection.anchors import AnchorConfig, generate_anchors, num_anchors_per_location

SCORINGS = ("sigmoid", "softmax")
HEADS = ("conv", "ssdlite")


@dataclass
class SSDConfig:
    """Everything that defines an SSD model; stored in checkpoints.

    Attributes:
        num_classes: object classes, background excluded (COCO: 90, the face model: 1).
        alpha: width multiplier of the body and the extra layers.
        extra_depths: output channels of the four extra layers at α=1.
        min_depth: TF's floor on scaled extra-layer depths.
        taps: body layers feeding the first two predictors (empty: the body's own
            ``detection_taps``, TF OD API's choice for it).
        scoring: ``sigmoid`` (TF OD API ssd_mobilenet_v1) or ``softmax`` (original SSD).
        padding: ``same`` (TF-trained weights) or ``symmetric``.
        backbone: the body, ``mobilenet_v1`` or ``mobilenet_v2`` (:mod:`mbv1.backbone.bodies`).
        head: ``conv`` (SSD) or ``ssdlite`` (separable extras and predictors).
    """

    num_classes: int = 90
    alpha: float = 1.0
    activation: str = "relu6"
    padding: str = "symmetric"
    bn_eps: float = 1e-3
    extra_depths: tuple[int, ...] = (512, 256, 256, 128)
    min_depth: int = 16
    taps: tuple[str, ...] = ()
    scoring: str = "sigmoid"
    anchors: AnchorConfig = field(default_factory=AnchorConfig)
    backbone: str = "mobilenet_v1"
    head: str = "conv"

    def __post_init__(self):
        if self.scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {SCORINGS}, got {self.scoring!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.backbone not in BODIES:
            raise ValueError(f"backbone must be one of {tuple(BODIES)}, got {self.backbone!r}")
        if isinstance(self.anchors, dict):
            self.anchors = AnchorConfig(**{k: tuple(v) if isinstance(v, list) else v
                                           for k, v in self.anchors.items()})
        self.extra_depths = tuple(self.extra_depths)
        self.taps = tuple(self.taps) or BODIES[self.backbone].detection_taps

    def to_dict(self) -> dict:
        d = asdict(self)
        d["extra_depths"] = list(self.extra_depths)
        d["taps"] = list(self.taps)
        d["anchors"]["aspect_ratios"] = list(self.anchors.aspect_ratios)
        return d


class SSD(nn.Module):
    """SSD or SSDLite on a MobileNet body. ``forward(x [N,3,H,W])`` returns raw tensors in train and eval alike:
    ``box_codes [N, A, 4]`` (ty, tx, th, tw) and ``class_logits [N, A, num_classes + 1]``.
    ``anchors_for(x)`` gives the matching ``[A, 4]`` anchors (cy, cx, h, w), normalised."""

    def __init__(self, config: SSDConfig | None = None, **kw):
        super().__init__()
        config = config or SSDConfig(**kw)
        self.config = config
        bkw = dict(activation=config.activation, padding=config.padding, bn_eps=config.bn_eps)
        self.backbone = build_body(config.backbone, alpha=config.alpha, num_classes=0, **bkw)
        channels = {f.name: f.channels for f in self.backbone.feature_info}
        unknown = [t for t in config.taps if t not in channels]
        if unknown:
            raise ValueError(f"taps {unknown} are not layers of {config.backbone}; "
                             f"choose from {', '.join(channels)}")
        in_channels = [channels[t] for t in config.taps]
        lite = config.head == "ssdlite"

        def depth(d: float) -> int:
            return max(int(d * config.alpha), config.min_depth)

        self.extras = nn.ModuleList()
        prev = in_channels[-1]
        for d in config.extra_depths:
            down = DepthwiseSeparable(depth(d / 2), depth(d), 2, **bkw) if lite \
                else ConvBNAct(depth(d / 2), depth(d), 3, 2, **bkw)
            self.extras.append(nn.Sequential(ConvBNAct(prev, depth(d / 2), 1, **bkw), down))
            prev = depth(d)
            in_channels.append(prev)
        n_maps = len(in_channels)
        self.num_anchors = num_anchors_per_location(n_maps, config.anchors)
        k = config.num_classes + 1

        def predictor(c: int, out: int) -> nn.Module:
            conv = nn.Conv2d(c, out, 1)
            conv.cost_type = "pointwise"
            nn.init.normal_(conv.weight, std=0.03)
            nn.init.zeros_(conv.bias)
            if not lite:
                return conv
            return nn.Sequential(ConvBNAct(c, c, 3, 1, groups=c, cost_type="depthwise", **bkw), conv)

        self.box_heads = nn.ModuleList(predictor(c, a * 4) for c, a in zip(in_channels, self.num_anchors))
        self.class_heads = nn.ModuleList(predictor(c, a * k) for c, a in zip(in_channels, self.num_anchors))
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

    @torch.no_grad()
    def load_class_rows(self, state: dict, source_labels: list[str], labels: list[str]) -> list[str]:
        """From another detector's ``state`` (its class predictors of another label set), copy
        the logit rows of the background and of every class whose name this model shares
        (case-insensitive; this model's ``labels``), where the predictors have the same anchors
        per cell. Returns the
        lines to print."""
        names = [str(n).lower() for n in labels]
        source = {str(n).lower(): i for i, n in enumerate(source_labels)}
        pairs = [(0, 0)] + [(j + 1, source[n] + 1) for j, n in enumerate(names) if n in source]
        if len(pairs) == 1:
            return []
        k, copied = self.config.num_classes + 1, 0
        for p, head in enumerate(self.class_heads):
            conv = head if isinstance(head, nn.Conv2d) else head[-1]
            prefix = f"class_heads.{p}" + ("" if isinstance(head, nn.Conv2d) else f".{len(head) - 1}")
            w, b = state.get(f"{prefix}.weight"), state.get(f"{prefix}.bias")
            a = self.num_anchors[p]
            if w is None or b is None or w.shape[1:] != conv.weight.shape[1:] or w.shape[0] % a:
                continue
            ks = w.shape[0] // a
            if ks == k or max(s for _, s in pairs) >= ks:
                continue  # same label count (loaded as it is) or another label space
            dst_w, dst_b = conv.weight.view(a, k, *conv.weight.shape[1:]), conv.bias.view(a, k)
            src_w, src_b = w.view(a, ks, *w.shape[1:]), b.view(a, ks)
            for d, s in pairs:
                dst_w[:, d].copy_(src_w[:, s])
                dst_b[:, d].copy_(src_b[:, s])
            copied += 1
        if not copied:
            return []
        kept = [n for n in names if n in source]
        return [f"init: class predictor rows of background + {len(kept)} shared class(es) "
                f"({', '.join(kept[:8])}{'…' if len(kept) > 8 else ''}) taken from the init model "
                f"in {copied}/{len(self.class_heads)} predictors"]

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
