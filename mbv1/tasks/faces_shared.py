"""The face task's side of the shared face model (``model.heads=shared``): its detector from
the ``shared`` settings, and its training data (cached RoI features with the teachers'
targets). Plain functions of the task's config; :mod:`mbv1.tasks.faces` calls them."""

from __future__ import annotations

from mbv1.engine.task import Datasets
from mbv1.errors import MBV1Error

__all__ = ["shared_datasets", "shared_detector"]


def shared_detector(cfg):
    """``(SSD with its weights, its Preprocess, the SharedConfig with the detector's path)`` of
    ``cfg.shared.detector``; ``model.resolution`` becomes the detector's input size."""
    from mbv1.detection.preprocess import Preprocess
    from mbv1.faces.shared import SharedConfig, load_detector

    m = cfg.model
    if m.init and m.init != "face-ssd" and "model.init" in cfg.explicit:
        raise MBV1Error(f"model.heads=shared takes its body from shared.detector "
                        f"({cfg.shared.detector}); model.init={m.init} would replace it: "
                        "pass --set model.init=null")
    det, meta, path = load_detector(cfg.shared.detector)
    pre = Preprocess.from_meta(meta)
    shared = SharedConfig(**{**cfg.shared.to_dict(), "detector": path})
    if "model.resolution" in cfg.explicit and m.resolution != pre.input_size:
        raise MBV1Error(f"model.heads=shared runs the detector at its own input size "
                        f"({pre.input_size} px); drop model.resolution={m.resolution}")
    cfg.set("model.resolution", pre.input_size, explicit=False)
    return det, pre, shared


def shared_datasets(src, train_idx, val_idx, split, targets, heads, info, det, pre, shared,
                    cfg, device: str, log) -> Datasets:
    """The shared model's data: the detector's cached RoI features of every face
    (:mod:`mbv1.faces.roi_features`) with the teachers' targets; ``info`` gains the model's
    ``shared``, ``ssd`` and ``preprocess`` meta."""
    from mbv1.faces.data import FaceRoIDataset
    from mbv1.faces.roi_features import roi_features
    from mbv1.faces.shared import SharedFaceModel

    d = cfg.data
    if d.degrade > 0 or d.color_jitter > 0:
        raise MBV1Error("model.heads=shared trains on the detector's cached RoI features: "
                        "data.degrade and data.color_jitter do not apply (set them to 0)")
    feats = roi_features(src, SharedFaceModel(heads, det, shared), pre, device, log)
    info.update(shared=shared.to_dict(), ssd=det.config.to_dict(), preprocess=pre.to_dict(),
                resolution=pre.input_size)
    train = FaceRoIDataset(src, train_idx, feats, targets, train=True, seed=cfg.train.seed,
                           hflip=d.hflip)
    val = None
    if val_idx:
        val = FaceRoIDataset(src, val_idx, feats, targets)
        val.split = split
    return Datasets(train, val, info, split)
