"""Fine-tuning a detector from a pretrained one (``model.init`` naming a detection checkpoint,
e.g. the COCO SSDLite): the SSD settings its weights fix are taken from it, unless set."""

from __future__ import annotations

from pathlib import Path

from mbv1.errors import MBV1Error

# SSD settings a pretrained detector fixes (its weights only fit them), as config keys: with
# model.init naming a detection checkpoint they default to the checkpoint's own.
INIT_ARCH = {"backbone": "model.backbone", "alpha": "model.alpha", "activation": "model.activation",
             "padding": "model.padding", "bn_eps": "model.bn_eps", "head": "ssd.head",
             "taps": "ssd.taps", "extra_depths": "ssd.extra_depths", "min_depth": "ssd.min_depth",
             "scoring": "ssd.scoring"}


def init_meta(init: str | None) -> dict:
    """The meta of the detection checkpoint ``model.init`` names (a path, a run folder or a
    pulled model's name such as ``coco-ssdlite``); ``{}`` when it is not one."""
    if not init:
        return {}
    from mbv1.backbone.pretrained import NAMED_INIT
    from mbv1.checkpoint import load_checkpoint

    path = NAMED_INIT[init]() if init in NAMED_INIT else Path(init).expanduser()
    if not path.exists() or not (path.is_dir() or path.suffix in (".pt", ".pth")):
        return {}  # read_init says what is wrong with it
    try:
        ckpt = load_checkpoint(path)
    except MBV1Error:
        return {}
    return dict(ckpt.get("meta") or {}) if ckpt.get("task") == "detection" else {}


def adopt_init_architecture(cfg, meta: dict) -> list[str]:
    """With ``model.init`` a detection checkpoint, every SSD setting its weights fix and the
    user did not set takes the checkpoint's value (the COCO SSDLite: MobileNetV2, SSDLite
    heads, TF padding, its anchor order), so its body, extras and box predictors load. ``meta``:
    the init's (:func:`init_meta`). Returns the ``key=value`` settings taken."""
    ssd = meta.get("ssd")
    if cfg.model.framework != "ssd" or not isinstance(ssd, dict):
        return []
    taken = []
    anchors = {f"ssd.{k}": v for k, v in (ssd.get("anchors") or {}).items()}
    for key, value in [*((k, ssd[n]) for n, k in INIT_ARCH.items() if n in ssd), *anchors.items()]:
        if key in cfg.explicit or value is None:
            continue
        current = cfg.get(key)
        if isinstance(value, (list, tuple)):
            value, current = list(value), list(current)
        if current != value:
            cfg.set(key, value, explicit=False)
            taken.append(f"{key}={value}")
    return taken
