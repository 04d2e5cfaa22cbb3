"""The shared face model: one MobileNetV1 pass per frame for where the faces are and everything
about them (``mbv1 train faces --set model.heads=shared``).

The face detector (the real SSD-MobileNetV1 of face-api, WIDER FACE) runs once per frame and
stays frozen: its boxes are the teacher detector's boxes. For every detected face the
attribute and embedding heads read the detector body's own ``conv5`` map (``shared.tap``:
stride 8, 256 channels at α=1; any body layer before the last) at the box: RoI-align
(``torchvision.ops.roi_align``'s sampling, ``aligned=False``,
:func:`mbv1.detection.roi_crop.roi_crop`) to ``roi_size x roi_size`` cells, then copies of the
body's later layers (``conv6`` to ``conv13``, started from the detector's weights and trained),
global average pooling and the heads of :class:`mbv1.faces.model.HeadsConfig`. The Faster
R-CNN box classifier of the TF Object Detection API is built the same way
(:mod:`mbv1.detection.faster_rcnn`). A face then costs the RoI head (about 98 M mult-adds at
α=1 from conv5, 78 M from conv11 with conv12-13), not a second backbone. conv5 is the default:
its finer grid keeps more of a small face than conv11 (whose gender was at chance), and conv3
(stride 4, 118 M a face) trained no better within the seeds' spread while it cost 1.44x
detection on six faces against conv5's 1.31x (docs/faces.md).

Because the detector is frozen, the RoI features of the training faces never change: they are
computed once per face and cached beside the crops (:mod:`mbv1.faces.roi_features`), in several
views: the face as it is and mirrored, and shrunk in its frame to about 64 and 32 px
(``shared.train_sizes``), the sizes of faces in a street or a crowd, each view also cut at two
jittered boxes (``shared.jitter_copies``); training runs the RoI head only. (docs/faces.md has
what each of these measured.)
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torchvision.ops import roi_align

from mbv1.detection.postprocess import PostprocessConfig, postprocess
from mbv1.detection.roi_crop import roi_crop
from mbv1.detection.ssd import SSD
from mbv1.errors import MBV1Error
from mbv1.faces.model import FaceHeads, HeadsConfig

# maps up to this many cells (conv11's 32x32 at 512 px) are cropped by matrix products
MATMUL_CROP_MAX_CELLS = 32 * 32

__all__ = ["RoIHeads", "SharedConfig", "SharedFaceModel", "build_shared", "frame_and_face",
           "load_detector"]


@dataclass
class SharedConfig:
    """How the heads read the detector (stored as ``meta["shared"]``).

    Attributes:
        tap: body layer the RoI features are cut from.
        roi_size: RoI-align output side (cells).
        sampling_ratio: bilinear samples per bin side.
        roi_margin: each box grows by this fraction of its side (half on each side) before
            RoI-align: context around the face, as a student's crop has (0.25: the box fills
            the central 80%, the face crops' 128 of 160; measured: no better, docs/faces.md).
        train_layers: how many of the RoI head's body layers train (counted from the last;
            the others keep the detector's weights); 0: the heads alone.
        dropout: before the heads, in training.
        train_sizes: besides each training face as it is, views of it shrunk to about these
            sizes (its longest side, pixels of the detector's input; each also mirrored) in
            the cached RoI features (:mod:`mbv1.faces.roi_features`); ``[]``: its own size.
        jitter_copies: besides each of those views, this many with the box moved and resized
            at random (cut from the same maps: little extra time to cache, that many times the
            disk); 0: none.
        box_jitter: their largest shift and size change, fractions of the box's side.
        conf, iou, max_det: the detector's score threshold, NMS IoU and detections per frame.
        detector: where the detector weights came from (provenance, and the feature cache key).
    """

    tap: str = "conv5"
    roi_size: int = 14
    sampling_ratio: int = 2
    roi_margin: float = 0.0
    train_layers: int = 8
    dropout: float = 0.0
    train_sizes: list[int] = field(default_factory=lambda: [64, 32])
    jitter_copies: int = 2
    box_jitter: float = 0.1
    conf: float = 0.5
    iou: float = 0.5
    max_det: int = 100
    detector: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


class SharedFaceModel(FaceHeads, nn.Module):
    """The frozen face SSD + an RoI head with the face heads (module docstring).

    ``forward(x, boxes=None)``: ``x [N, 3, S, S]`` frames as the detector takes them
    (:class:`mbv1.detection.preprocess.Preprocess`); ``boxes`` per frame ``[K_i, 4]`` xyxy in
    input pixels, or ``None`` to use the detector's own. Returns one dict, the same in train
    and eval mode: ``boxes [K, 4]`` (input pixels), ``scores [K]`` (1 for given boxes),
    ``batch_index [K]``, and the heads' outputs for the K faces (logits for gender /
    expression / celeba, ``age [K]`` years, ``embedding [K, D]`` unit length; plus
    ``embedding_teacher`` when the embedding has a projection).

    ``forward(rois, from_rois=True)``: the heads on RoI features ``[K, C, P, P]`` (cached ones
    in training; :meth:`rois` makes them).
    """

    def __init__(self, heads: HeadsConfig, detector: SSD, config: SharedConfig | None = None):
        super().__init__()
        self.heads_config = heads
        self.config = config = config or SharedConfig()
        self.detector = detector.eval().requires_grad_(False)
        body = detector.backbone
        names = body.tap_names
        if config.tap not in names[:-1]:
            raise MBV1Error(f"shared.tap={config.tap!r}: use a body layer before the last "
                            f"({', '.join(names[:-1])})")
        info = {f.name: f for f in body.feature_info}
        self.stride = info[config.tap].stride
        self.roi_channels = info[config.tap].channels
        later = names[names.index(config.tap) + 1:]
        self.roi_head = nn.Sequential(*(copy.deepcopy(getattr(body, n)) for n in later))
        if not 0 <= config.train_layers <= len(later):
            raise MBV1Error(f"shared.train_layers={config.train_layers}: 0 (the heads alone) to "
                            f"{len(later)} ({', '.join(later)})")
        if any(not 8 <= s <= 1024 for s in config.train_sizes):
            raise MBV1Error(f"shared.train_sizes={list(config.train_sizes)}: face sizes in pixels "
                            "of the detector's input, 8 to 1024 (e.g. [64, 32]), or [] for none")
        if config.jitter_copies < 0 or not 0 <= config.box_jitter < 0.5:
            raise MBV1Error(f"shared.jitter_copies={config.jitter_copies}, shared.box_jitter="
                            f"{config.box_jitter}: copies 0 or more, jitter 0 to 0.5 of a side")
        self.fixed = list(self.roi_head)[: len(later) - config.train_layers]
        self.roi_head.requires_grad_(True)
        for layer in self.fixed:
            layer.requires_grad_(False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(config.dropout)
        self._build_heads(info[later[-1]].channels, heads)
        self.post = PostprocessConfig(config.conf, config.iou, config.max_det, None)
        self._anchors: dict = {}

    def train(self, mode: bool = True) -> SharedFaceModel:
        super().train(mode)
        self.detector.eval()  # frozen: its BatchNorm statistics never move
        for layer in self.fixed:
            layer.eval()
        return self

    # -- the pieces ---------------------------------------------------------------------------
    def maps_and_tap(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``(the detector's feature maps, the body's tap map)`` of frames ``x``, from one body
        pass (the tap may be one of the detector's maps or any earlier body layer)."""
        maps, taps = self.detector.maps_with(x, [self.config.tap])
        return maps, taps[self.config.tap]

    def detect(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """``(boxes per frame [K_i, 4] input pixels, scores per frame, tap map)`` of frames
        ``x``."""
        maps, tap = self.maps_and_tap(x)
        codes, logits = self.detector.predict(maps)
        return (*self.boxes_from(codes, logits, x.shape[-2:]), tap)

    def boxes_from(self, codes: torch.Tensor, logits: torch.Tensor, size) -> tuple[list, list]:
        """Decoded, thresholded, NMS'd detector outputs as input-pixel boxes and scores."""
        h, w = int(size[0]), int(size[1])
        key = (h, w, str(codes.device))
        if key not in self._anchors:  # made once per input size, as the Detector does
            self._anchors[key] = self.detector.anchors_for(h, w, codes.device)
        anchors = self._anchors[key]
        dets = postprocess(codes, self.detector.scores(logits), anchors, self.post)
        scale = torch.tensor([w, h, w, h], dtype=codes.dtype, device=codes.device)
        return [d["boxes_xyxy"] * scale for d in dets], [d["scores"] for d in dets]

    def tap_map(self, x: torch.Tensor) -> torch.Tensor:
        """The body's ``tap`` map of frames ``x`` (the detector's first feature map)."""
        return self.detector.backbone.features(x, [self.config.tap])[self.config.tap]

    def rois(self, fmap: torch.Tensor, boxes: list[torch.Tensor]) -> torch.Tensor:
        """RoI features ``[K, C, P, P]`` of the tap map at ``boxes`` (input pixels):
        ``torchvision.ops.roi_align``'s numbers (``aligned=False``). On maps up to 32x32 cells
        (conv11 at 512 px) mbv1's matrix-product :func:`roi_crop` computes them faster; on finer
        maps torchvision's own kernel does (conv5's 64x64, six faces, one thread: about half
        the time), and no gradient flows here anyway (the detector is frozen, training reads cached
        features)."""
        c = self.config
        if c.roi_margin:
            boxes = [_grown(b, c.roi_margin) for b in boxes]
        if fmap.shape[-2] * fmap.shape[-1] <= MATMUL_CROP_MAX_CELLS:
            return roi_crop(fmap, boxes, c.roi_size, 1.0 / self.stride, c.sampling_ratio)
        return roi_align(fmap, boxes, c.roi_size, 1.0 / self.stride, c.sampling_ratio,
                         aligned=False)

    def head(self, rois: torch.Tensor, project: bool = True) -> dict[str, torch.Tensor]:
        """The face heads on RoI features."""
        f = self.dropout(self.pool(self.roi_head(rois)).flatten(1))
        return self._heads(f, project=project)

    # -- the one forward ------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, boxes: list[torch.Tensor] | None = None,
                from_rois: bool = False) -> dict[str, torch.Tensor]:
        if from_rois:
            return self.head(x)
        if x.shape[1] != 3:
            raise MBV1Error(f"the shared face model takes RGB frames [N, 3, H, W], got "
                            f"{tuple(x.shape)} (RoI features: from_rois=True)")
        if boxes is None:
            boxes, scores, fmap = self.detect(x)
        else:
            fmap = self.tap_map(x)
            boxes = [b.to(fmap.dtype) for b in boxes]
            scores = [b.new_ones(len(b)) for b in boxes]
        out = self.head(self.rois(fmap, boxes))
        index = torch.cat([torch.full((len(b),), i, dtype=torch.long, device=x.device)
                           for i, b in enumerate(boxes)])
        return {"boxes": torch.cat(boxes), "scores": torch.cat(scores), "batch_index": index,
                **out}

    def costs(self, size: int) -> tuple[int, int]:
        """``(mult-adds of the detector per size x size frame, of the heads per face)``."""
        from mbv1.backbone.costs import count_costs

        frame = count_costs(self.detector, size).mult_adds
        p = self.config.roi_size
        face = count_costs(RoIHeads(self), p, in_channels=self.roi_channels).mult_adds
        return frame, face


def _grown(boxes: torch.Tensor, margin: float) -> torch.Tensor:
    """xyxy ``boxes`` grown by ``margin`` of their width and height about their centres."""
    half = (boxes[:, 2:] - boxes[:, :2]) * (margin / 2)
    return torch.cat([boxes[:, :2] - half, boxes[:, 2:] + half], 1)


class RoIHeads(nn.Module):
    """The heads on RoI features as a module of its own (cost counting, export)."""

    def __init__(self, model: SharedFaceModel, keys: list[str] | None = None):
        super().__init__()
        self.model, self.keys = model, keys

    def forward(self, rois: torch.Tensor):
        out = self.model.head(rois, project=False)
        return tuple(out[k] for k in self.keys) if self.keys else out


def load_detector(spec: str | None) -> tuple[SSD, dict, str]:
    """``(SSD, its checkpoint meta, path)`` of ``shared.detector``: ``face-ssd`` (the pulled
    face model, the default) or a detection checkpoint."""
    from pathlib import Path

    from mbv1.detection.predictor import load_ssd
    from mbv1.faces.pipeline import _default_ssd

    path = _default_ssd() if spec in (None, "", "face-ssd") else Path(spec)
    if not path.exists():
        raise MBV1Error(f"shared.detector={spec}: no such checkpoint")
    model, meta = load_ssd(path)
    return model, meta, str(path)


def build_shared(meta: dict, detector: SSD | None = None) -> SharedFaceModel:
    """The shared face model of a checkpoint meta (``heads``, ``ssd``, ``shared``, ``prior``);
    ``detector``: the SSD with its weights (training), else built empty (a checkpoint's state
    is loaded over it)."""
    from mbv1.detection.ssd import SSDConfig

    if detector is None:
        detector = SSD(SSDConfig(**meta["ssd"]))
    model = SharedFaceModel(HeadsConfig(**meta["heads"]), detector,
                            SharedConfig(**meta["shared"]))
    model.apply_priors(meta.get("prior"))
    return model


def frame_and_face(model: SharedFaceModel, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """What a frame with one face costs (``cost_forward`` of the face task): the whole
    detector on ``x``, then the heads once, on a box in the middle of the frame."""
    s = x.shape[-1]
    maps, tap = model.maps_and_tap(x)
    model.detector.predict(maps)
    box = x.new_tensor([[s * 3 / 8, s * 3 / 8, s * 5 / 8, s * 5 / 8]])
    return model.head(model.rois(tap, [box]))
