"""Fine-tuning: start from other weights, freeze the lower body, freeze BatchNorm statistics.

``model.init`` names an mbv1 checkpoint (file or run folder, any task: the body is what
transfers), a peer's MobileNetV1 weights (timm, TF-slim, Keras) or MobileNetV2 weights
(torchvision; converted through :mod:`mbv1.backbone.peers`), or ``face-ssd``: the α=1 body of
the pulled face detector (face-api's SSD, trained on WIDER FACE). Body weights must fit (another
body or a different α is an error); head weights that do not fit the new label set are skipped
and listed, as timm does.

``model.freeze = conv11`` freezes conv0..conv11 (MobileNetV2: ``block10`` freezes
conv_stem..block10), mmdetection's ``frozen_stages``, their BatchNorm included;
``model.norm_eval`` keeps every BatchNorm of the body in eval mode (statistics frozen, affine
parameters still trained unless frozen).
"""

from __future__ import annotations

import difflib
import re

import torch
from torch import nn

from mbv1.backbone.bodies import BODY_TYPES, body_name
from mbv1.backbone.pretrained import (
    BODY_LABELS,
    NAMED_ALPHA,
    InitWeights,
    body_of,
    init_alpha,
    read_init,
)
from mbv1.errors import MBV1Error

# A body layer's keys: MobileNetV1's conv0..conv13, MobileNetV2's conv_stem, blockN, conv_head.
_BODY = re.compile(r"^(conv\d+|conv_stem|block\d+|conv_head)\.")


def find_body(model: nn.Module) -> tuple[str, nn.Module]:
    """The body (MobileNetV1 or MobileNetV2) inside ``model`` and its name prefix (``""`` or
    ``"backbone."``)."""
    for name, m in model.named_modules():
        if isinstance(m, BODY_TYPES):
            return (name + "." if name else ""), m
    raise MBV1Error(f"{type(model).__name__} holds no MobileNetV1 / MobileNetV2 body: "
                    "fine-tuning options (model.init, model.freeze, model.norm_eval) need one")


def drop_default_init(cfg) -> str | None:
    """When ``model.init`` came from the task's default recipe and the command line asked for
    another width, the default weights cannot apply: clear ``model.init`` (and the recipe's
    ``model.freeze``, which only makes sense on pretrained weights) and return the note to
    print. A ``model.init`` the user chose is never dropped (a mismatch then fails). A named
    body's width is known without reading it (so nothing needs to be pulled for this)."""
    if not cfg.model.init or "model.init" in cfg.explicit or "model.alpha" not in cfg.explicit:
        return None
    alpha = NAMED_ALPHA.get(cfg.model.init)
    if alpha is None:
        alpha = init_alpha(read_init(cfg.model.init, cfg.model.init_format))
    if alpha is None or abs(alpha - cfg.model.alpha) < 1e-6:
        return None
    name = cfg.model.init
    cfg.set("model.init", None, explicit=False)
    if "model.freeze" not in cfg.explicit:
        cfg.set("model.freeze", None, explicit=False)
    if "run.recipe" not in cfg.explicit:
        cfg.set("run.recipe", f"task {cfg.task}'s default recipe without its model.init={name} "
                f"(α={cfg.model.alpha:g} from scratch)", explicit=False)
    return (f"note: the default recipe's model.init={name} is an α={alpha:g} body and "
            f"model.alpha={cfg.model.alpha:g} was asked: training from scratch, nothing frozen")


def load_init(model: nn.Module, init: InitWeights) -> list[str]:
    """Copy ``init`` into ``model``; returns report lines (loaded, skipped head keys).

    Raises:
        MBV1Error: no body weights found, or body weights of another shape (α, variant).
    """
    own = model.state_dict()
    target_prefix, target = find_body(model)
    found = body_of(init.state)
    if found is None:
        raise MBV1Error(f"{init.source} has no MobileNetV1 / MobileNetV2 body weights (no "
                        "conv0.conv.weight / conv_stem.conv.weight)")
    source_prefix, source_body = found
    if source_body != body_name(target):
        raise MBV1Error(f"{init.source} holds a {BODY_LABELS[source_body]} body and this model "
                        f"is a {BODY_LABELS[body_name(target)]}: set model.backbone={source_body}"
                        " (or a model.init of the same body)")
    mapped: dict[str, torch.Tensor] = {}
    for k, v in init.state.items():
        rel = k[len(source_prefix):] if k.startswith(source_prefix) else None
        if rel is not None and _BODY.match(rel):
            mapped[target_prefix + rel] = v
        elif k in own:
            mapped[k] = v  # a head of the same layout (same task)
    bad_body = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in mapped.items()
                if k in own and _BODY.match(k[len(target_prefix):]) and v.shape != own[k].shape]
    if bad_body:
        raise MBV1Error(f"{init.source} does not fit this body: {bad_body[0]} ({len(bad_body)} "
                        "tensors differ); set model.alpha / model.variant to the weights' own")
    missing_body = [k for k in mapped if k not in own]
    if missing_body:
        hint = difflib.get_close_matches(missing_body[0], list(own), n=1)
        raise MBV1Error(f"{init.source} has body tensors this model lacks (first: "
                        f"{missing_body[0]}{', nearest ' + hint[0] if hint else ''}): another "
                        "variant?")
    skipped = [k for k, v in mapped.items() if v.shape != own[k].shape]
    loaded = {k: v for k, v in mapped.items() if k not in skipped}
    with torch.no_grad():
        for k, v in loaded.items():
            own[k].copy_(v.to(own[k].dtype))
    fresh = sorted({k.rsplit(".", 1)[0] for k in own if k not in loaded})
    lines = [f"init: {len(loaded)}/{len(own)} tensors from {init.source}"]
    if skipped:
        lines.append("init: skipped (shape differs: new head for the new label set): "
                     + ", ".join(f"{k} {tuple(mapped[k].shape)} -> {tuple(own[k].shape)}"
                                 for k in skipped))
    if fresh:
        lines.append(f"init: freshly initialised: {', '.join(fresh[:8])}"
                     + (f" (+{len(fresh) - 8} more)" if len(fresh) > 8 else ""))
    return lines


def freeze(model: nn.Module, upto: str | None) -> list[nn.Module]:
    """Freeze the body's layers up to and including ``upto`` (``conv0``..``conv13``;
    MobileNetV2 ``conv_stem``, ``block0``..``block16``, ``conv_head``) in the body's own order;
    returns the frozen modules (kept in eval mode by :func:`train_mode`)."""
    if not upto:
        return []
    _, body = find_body(model)
    names = [name for name, _ in body.blocks()]
    if upto not in names:
        hint = difflib.get_close_matches(upto, names, n=1)
        raise MBV1Error(f"model.freeze={upto!r} is not a layer of this body"
                        + (f"; did you mean {hint[0]!r}?" if hint else "")
                        + f" (layers: {', '.join(names)})")
    frozen = [m for name, m in body.blocks()[: names.index(upto) + 1]]
    for m in frozen:
        m.requires_grad_(False)
    return frozen


def train_mode(model: nn.Module, frozen: list[nn.Module], norm_eval: bool) -> None:
    """``model.train()``, then BatchNorm in eval mode where its statistics are frozen."""
    model.train()
    for m in frozen:
        m.eval()
    if norm_eval:
        _, body = find_body(model)
        for m in body.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
