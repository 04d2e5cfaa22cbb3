"""A trained shared face model (:mod:`mbv1.faces.shared`) behind ``mbv1 faces --weights`` and
``mbv1 verify --weights``: per frame one pass of the detector (its boxes, scores and body map),
then the heads on the RoI features of all its faces as one batch.

Both halves run on ``backend`` (:mod:`mbv1.runtimes.cached`): the detector with its tap map as a
third output (fixed batch of one frame), the heads with a dynamic batch of faces, each exported
once per checkpoint and parity-checked against PyTorch; decoding, NMS and RoI-align stay in
PyTorch between them (the same functions as the module's own ``forward``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from mbv1.faces.model import head_probabilities

__all__ = ["SharedFaces"]


class _Trunk(nn.Module):
    """Frames → ``(box_codes, class_logits, tap map)``: the detector with its map exposed."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        maps, tap = self.model.maps_and_tap(x)
        return (*self.model.detector.predict(maps), tap)


class SharedFaces:
    """``self(rgb) → (boxes [K, 4] frame pixels, scores [K], {head: numpy [K, ...]})`` with
    probabilities for gender / expression (and ``celeba``), ``age`` in years, a unit
    ``embedding``. Attributes like :class:`mbv1.faces.student.FaceModel`'s: ``meta``,
    ``heads``, ``checkpoint``, ``backend``, ``crop`` (none: the heads read no crop)."""

    def __init__(self, loaded, device: str = "cpu", backend: str = "auto", warn=None,
                 min_size: float | None = None):
        from mbv1.backbone import fuse_bn
        from mbv1.detection.preprocess import Preprocess
        from mbv1.faces.pipeline import MIN_FACE
        from mbv1.faces.shared import RoIHeads
        from mbv1.runtimes.cached import FastForward, file_key, runtime_for

        self.device = torch.device(device)
        self.meta, self.task, self.checkpoint = loaded.meta, loaded.task, Path(loaded.path)
        self.model = fuse_bn(loaded.model).to(self.device).eval()
        self.heads = list(self.meta["heads"]["heads"])
        self.keys = sorted(self.heads)
        self.crop: dict = {}
        self.min_size = MIN_FACE if min_size is None else min_size
        self.pre = Preprocess.from_meta(self.meta)
        s, c = self.pre.input_size, self.model.config
        key = file_key(loaded.path)
        self.trunk = _Trunk(self.model)
        self._trunk_rt = runtime_for(self.trunk, (3, s, s), ["box_codes", "class_logits", "tap"],
                                     f"{self.checkpoint.stem}-shared-trunk", key, backend,
                                     self.device, batch=1, warn=warn)
        self.head = FastForward(RoIHeads(self.model, self.keys),
                                (self.model.roi_channels, c.roi_size, c.roi_size), self.keys,
                                f"{self.checkpoint.stem}-shared-heads", key, backend, self.device,
                                warn)
        trunk_backend = self._trunk_rt.runtime if self._trunk_rt else "eager"
        self.backend = (trunk_backend if trunk_backend == self.head.backend
                        else f"{trunk_backend} + heads {self.head.backend}")

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        x = self.pre(rgb, self.device)
        if self._trunk_rt is not None:
            codes, logits, fmap = self._trunk_rt(x)
        else:
            codes, logits, fmap = self.trunk(x.contiguous(memory_format=torch.channels_last))
        (boxes,), (scores,) = self.model.boxes_from(codes, logits, x.shape[-2:])
        h, w = rgb.shape[:2]
        sx, sy = self.pre.frame_scale(h, w)
        s = self.pre.input_size
        scale = boxes.new_tensor([sx / s, sy / s, sx / s, sy / s])
        frame = torch.minimum(boxes * scale, boxes.new_tensor([w, h, w, h]))
        # the faces the training data kept (mbv1.faces.pipeline.FaceFinder's min_size)
        keep = torch.minimum(frame[:, 2] - frame[:, 0], frame[:, 3] - frame[:, 1]) >= self.min_size
        boxes, scores, frame = boxes[keep], scores[keep], frame[keep]
        res = (head_probabilities(self.keys, self.head(self.model.rois(fmap, [boxes])))
               if len(boxes) else {})
        return frame.cpu().numpy().astype(np.float32), scores.float().cpu().numpy(), res
