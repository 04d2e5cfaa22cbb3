"""Faster R-CNN with a MobileNetV1 feature extractor, TF Object Detection API layout
(``faster_rcnn_mobilenet_v1``, the second framework of paper Table 13).

Built from torchvision's detection parts on mbv1's body (no second copy of them):

* first stage: the body up to ``conv11`` (stride 16) feeds torchvision's ``RPNHead`` (a 3x3
  conv to ``rpn_depth`` = 512 channels, TF's ``first_stage_box_predictor_depth``, then 1x1
  objectness and box convs) over an ``AnchorGenerator`` grid (TF: base 256 px x scales 0.25,
  0.5, 1, 2 and aspect ratios 0.5, 1, 2: 12 anchors per cell); a ``RegionProposalNetwork``
  keeps ``proposals`` = 300 boxes after NMS at IoU 0.7 (TF ``first_stage_max_proposals``,
  train and test);
* crop: every proposal cropped to ``crop_size`` = 14 x 14 on conv11 (TF's ``crop_and_resize``
  to ``initial_crop_size``) by ``MultiScaleRoIAlign``'s scale inference and
  ``torchvision.ops.roi_align``'s sampling, computed with ``grid_sample``
  (:mod:`mbv1.detection.roi_crop`: same numbers, a far faster backward on the CPU), then a
  ``roi_pool`` x ``roi_pool`` max-pool (TF ``maxpool_kernel_size`` 2: 7 x 7);
* second stage: the body's own ``conv12`` (stride 2) and ``conv13`` as the box classifier
  (TF reuses ``Conv2d_12``/``Conv2d_13``), a spatial mean, then torchvision's
  ``FastRCNNPredictor`` (class logits incl. background, class-specific box deltas) inside
  torchvision's ``RoIHeads`` (sampling, losses, post-processing).

The module subclasses ``torchvision.models.detection.FasterRCNN`` but, as every mbv1 head,
``forward(x)`` returns raw tensors in train and eval alike (:meth:`forward`); the losses come
from :meth:`loss`, detections from :meth:`detect`. Differences from TF kept on purpose:
torchvision's one sigmoid objectness logit per anchor (TF: two softmax logits), class-specific
boxes for the background too (``4 (C + 1)`` deltas, TF ``4 C``), and at α < 1 the box
classifier is the α-scaled conv12/conv13 of the same body (TF keeps 1024 channels there).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import RPNHead

from mbv1.backbone import MobileNetV1
from mbv1.detection.roi_crop import RoICrop

TAP = "conv11"  # stride 16 (TF: Conv2d_11_pointwise)


@dataclass
class FasterRCNNConfig:
    """Everything that defines the model; stored in checkpoints as ``meta["faster_rcnn"]``.

    Attributes:
        num_classes: object classes, background excluded (COCO: 90).
        alpha, activation, padding, bn_eps: the MobileNetV1 body.
        rpn_depth: channels of the RPN's 3x3 conv (TF 512 at any α).
        anchor_sizes: anchor sides in input pixels at aspect ratio 1 (TF: 256 x 0.25..2).
        aspect_ratios: height / width of the anchors.
        proposals: boxes kept after the RPN's NMS, in training and at test time (TF 300).
        rpn_pre_nms: top-scoring anchors considered before that NMS.
        crop_size: side of the RoI crop on conv11 (TF ``initial_crop_size`` 14).
        roi_pool: max-pool kernel and stride after the crop (TF 2; 1: none, conv12 then sees
            14 x 14 and the box classifier runs at 7 x 7 as in the paper's cost figures).
        sampling_ratio: bilinear samples per RoI bin side (``roi_align``).
        box_batch: RoIs sampled per image for the second-stage loss (TF 64), 25 % positive.
    """

    num_classes: int = 90
    alpha: float = 1.0
    activation: str = "relu6"
    padding: str = "symmetric"
    bn_eps: float = 1e-3
    rpn_depth: int = 512
    anchor_sizes: tuple[float, ...] = (64.0, 128.0, 256.0, 512.0)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    proposals: int = 300
    rpn_pre_nms: int = 1000
    rpn_nms_iou: float = 0.7
    crop_size: int = 14
    roi_pool: int = 2
    sampling_ratio: int = 2
    rpn_batch: int = 256
    box_batch: int = 64

    def __post_init__(self):
        self.anchor_sizes = tuple(float(s) for s in self.anchor_sizes)
        self.aspect_ratios = tuple(float(a) for a in self.aspect_ratios)
        for name in ("num_classes", "proposals", "crop_size", "roi_pool", "rpn_depth"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.crop_size % self.roi_pool:
            raise ValueError(f"crop_size {self.crop_size} is not a multiple of roi_pool "
                             f"{self.roi_pool}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["anchor_sizes"] = list(self.anchor_sizes)
        d["aspect_ratios"] = list(self.aspect_ratios)
        return d


class Conv11Features(nn.Module):
    """The body as torchvision's detectors want it: ``x -> {"0": conv11 [N, C, H/16, W/16]}``
    with ``out_channels``. ``body`` is the whole MobileNetV1 (conv12/conv13 serve the box
    classifier), so that ``model.init`` / ``model.freeze`` find and load all 14 layers."""

    def __init__(self, body: MobileNetV1):
        super().__init__()
        self.body = body
        self.out_channels = next(f.channels for f in body.feature_info if f.name == TAP)

    def forward(self, x: torch.Tensor) -> OrderedDict:
        return OrderedDict([("0", self.body.features(x, [TAP])[TAP])])


class BoxClassifier(nn.Module):
    """Second stage on the ``[R, C, crop, crop]`` crops: max-pool, the body's conv12 and conv13,
    spatial mean -> ``[R, C13]``. The two blocks are the body's own modules, held in a tuple
    so that they are registered (and saved) once, under the body."""

    def __init__(self, body: MobileNetV1, roi_pool: int):
        super().__init__()
        self.pool = nn.MaxPool2d(roi_pool, roi_pool) if roi_pool > 1 else nn.Identity()
        self.blocks = (body.conv12, body.conv13)
        self.out_channels = body.num_features

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = self.pool(crops)
        for block in self.blocks:
            x = block(x)
        return x.mean((2, 3))


@contextlib.contextmanager
def _training_flag(modules, mode: bool):
    """Set ``training`` on these modules only (not their children: the box classifier's
    BatchNorm keeps its own mode), restored afterwards."""
    before = [m.training for m in modules]
    for m in modules:
        m.training = mode
    try:
        yield
    finally:
        for m, b in zip(modules, before):
            m.training = b


class MobileNetFasterRCNN(FasterRCNN):
    """Faster R-CNN-MobileNetV1 (see the module docstring).

    ``forward(x [N, 3, H, W])`` (normalised input, any size) returns, in train and eval mode
    alike, a dict of raw tensors with ``P = config.proposals``: ``proposals [N, P, 4]`` input
    pixels xyxy (zero rows past ``num_proposals``), ``num_proposals [N]``, ``class_logits
    [N, P, num_classes + 1]`` (0 = background) and ``box_regression [N, P, 4 (num_classes +
    1)]``.
    """

    def __init__(self, config: FasterRCNNConfig | None = None, **kw):
        config = config or FasterRCNNConfig(**kw)
        body = MobileNetV1(config.alpha, num_classes=0, activation=config.activation,
                           padding=config.padding, bn_eps=config.bn_eps)
        features = Conv11Features(body)
        anchors = AnchorGenerator((config.anchor_sizes,), (config.aspect_ratios,))
        per_cell = anchors.num_anchors_per_location()[0]
        rpn_head = RPNHead(config.rpn_depth, per_cell)
        if features.out_channels != config.rpn_depth:  # TF: 512 whatever conv11's width
            rpn_head.conv[0][0] = nn.Conv2d(features.out_channels, config.rpn_depth, 3, padding=1)
            nn.init.normal_(rpn_head.conv[0][0].weight, std=0.01)
            nn.init.zeros_(rpn_head.conv[0][0].bias)
        box_head = BoxClassifier(body, config.roi_pool)
        super().__init__(
            features, num_classes=None, min_size=300, max_size=1024,
            rpn_anchor_generator=anchors, rpn_head=rpn_head,
            rpn_pre_nms_top_n_train=config.rpn_pre_nms, rpn_pre_nms_top_n_test=config.rpn_pre_nms,
            rpn_post_nms_top_n_train=config.proposals, rpn_post_nms_top_n_test=config.proposals,
            rpn_nms_thresh=config.rpn_nms_iou, rpn_batch_size_per_image=config.rpn_batch,
            box_roi_pool=RoICrop(["0"], config.crop_size, config.sampling_ratio),
            box_head=box_head,
            box_predictor=FastRCNNPredictor(box_head.out_channels, config.num_classes + 1),
            box_batch_size_per_image=config.box_batch)
        self.config = config

    @property
    def body(self) -> MobileNetV1:
        return self.backbone.body

    # -- raw outputs ---------------------------------------------------------------------
    def forward(self, x: torch.Tensor, targets: tuple | None = None) -> dict[str, torch.Tensor]:
        """Raw outputs (class docstring); with ``targets = (boxes, labels)`` the losses of
        :meth:`loss` instead, in either mode (the training step goes through ``forward`` so
        that DDP sees it)."""
        if targets is not None:
            return self.loss(x, *targets)
        images = ImageList(x, [tuple(x.shape[-2:])] * x.shape[0])
        features = self.backbone(x)
        with _training_flag([self.rpn], False):  # test-time proposal counts in both modes
            proposals, _ = self.rpn(images, features)
        return self._second_stage(features, proposals, images.image_sizes)

    def _second_stage(self, features, proposals: list[torch.Tensor], sizes) -> dict:
        n, p, k = len(proposals), self.config.proposals, self.config.num_classes + 1
        crops = self.roi_heads.box_roi_pool(features, proposals, sizes)
        class_logits, box_regression = self.roi_heads.box_predictor(self.roi_heads.box_head(crops))
        counts = torch.tensor([len(b) for b in proposals], device=class_logits.device)
        dev, dt = class_logits.device, class_logits.dtype
        out = {"proposals": torch.zeros(n, p, 4, device=dev, dtype=dt),
               "class_logits": torch.zeros(n, p, k, device=dev, dtype=dt),
               "box_regression": torch.zeros(n, p, 4 * k, device=dev, dtype=dt)}
        start = 0
        for i, b in enumerate(proposals):
            m = len(b)
            out["proposals"][i, :m] = b
            out["class_logits"][i, :m] = class_logits[start:start + m]
            out["box_regression"][i, :m] = box_regression[start:start + m]
            start += m
        out["num_proposals"] = counts
        return out

    # -- losses and detections -----------------------------------------------------------
    def loss(self, x: torch.Tensor, boxes: list[torch.Tensor],
             labels: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """torchvision's four Faster R-CNN losses and their sum ``loss``.

        Args:
            x: ``[N, 3, H, W]`` normalised images.
            boxes: per image ``[K, 4]`` xyxy normalised to the image (mbv1's batches).
            labels: per image ``[K]`` 1-based classes (0 = background).

        In eval mode (validation loss) the sampling and loss code runs as in training while
        every BatchNorm keeps its eval mode.
        """
        h, w = x.shape[-2:]
        scale = torch.tensor([w, h, w, h], dtype=x.dtype, device=x.device)
        targets = [{"boxes": b.to(x.dtype) * scale, "labels": lb.long()}
                   for b, lb in zip(boxes, labels)]
        images = ImageList(x, [(h, w)] * x.shape[0])
        features = self.backbone(x)
        with _training_flag([self.rpn, self.roi_heads], True):
            proposals, rpn_losses = self.rpn(images, features, targets)
            _, box_losses = self.roi_heads(features, proposals, images.image_sizes, targets)
        parts = {"rpn_objectness": rpn_losses["loss_objectness"],
                 "rpn_box": rpn_losses["loss_rpn_box_reg"],
                 "box_cls": box_losses["loss_classifier"], "box_reg": box_losses["loss_box_reg"]}
        return {"loss": sum(parts.values()), **parts}

    def detect(self, outputs: dict[str, torch.Tensor], height: int, width: int,
               conf: float = 0.01, iou: float = 0.6, max_det: int = 100,
               classes: tuple[int, ...] | None = None) -> list[dict[str, torch.Tensor]]:
        """Detections per image from :meth:`forward`'s outputs by torchvision's own
        post-processing (softmax, class-specific decoding, clipping, per-class NMS, top
        ``max_det``), as mbv1's post-process gives them: ``boxes_xyxy [K, 4]`` normalised to
        the input, ``scores [K]``, ``labels [K]`` 0-based, sorted by score."""
        rh = self.roi_heads
        rh.score_thresh, rh.nms_thresh, rh.detections_per_img = conf, iou, max_det
        counts = outputs["num_proposals"].tolist()
        proposals = [outputs["proposals"][i, :m] for i, m in enumerate(counts)]
        logits = torch.cat([outputs["class_logits"][i, :m] for i, m in enumerate(counts)])
        deltas = torch.cat([outputs["box_regression"][i, :m] for i, m in enumerate(counts)])
        if classes is not None:  # other classes never win: their logits to -inf
            keep = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
            keep[0] = True
            keep[[c + 1 for c in classes]] = True
            logits = logits.masked_fill(~keep, float("-inf"))
        boxes, scores, labels = rh.postprocess_detections(logits, deltas, proposals,
                                                          [(height, width)] * len(counts))
        scale = torch.tensor([width, height, width, height], dtype=logits.dtype,
                             device=logits.device)
        return [{"boxes_xyxy": (b / scale).clamp(0.0, 1.0), "scores": s, "labels": lb - 1}
                for b, s, lb in zip(boxes, scores, labels)]

    # -- costs ---------------------------------------------------------------------------
    def cost_pass(self, x: torch.Tensor, proposals: int | None = None) -> None:
        """The full test-time pass for cost counting (:func:`mbv1.backbone.costs.count_costs`,
        whose hooks count a batch's first item): body to conv11 and the RPN head once, then
        the box classifier and predictor once per proposal (``config.proposals``), each on
        its own crop, so that the counted mult-adds are P times the per-box cost."""
        p = self.config.proposals if proposals is None else proposals
        features = self.backbone(x)
        self.rpn.head(list(features.values()))
        h, w = x.shape[-2:]
        box = torch.tensor([[0.0, 0.0, w / 2, h / 2]], device=x.device, dtype=x.dtype)
        crop = self.roi_heads.box_roi_pool(features, [box], [(h, w)])
        for _ in range(p):
            self.roi_heads.box_predictor(self.roi_heads.box_head(crop))


def build_model(meta: dict, model: dict | None = None) -> MobileNetFasterRCNN:
    """The Faster R-CNN a detection checkpoint holds: ``meta["faster_rcnn"]`` is its
    :class:`FasterRCNNConfig` (``model``, the config's model section, is not needed)."""
    from mbv1.errors import MBV1Error

    if not isinstance(meta.get("faster_rcnn"), dict):
        raise MBV1Error("the checkpoint meta has no 'faster_rcnn' (FasterRCNNConfig): not an "
                        "mbv1 Faster R-CNN checkpoint")
    try:
        return MobileNetFasterRCNN(FasterRCNNConfig(**meta["faster_rcnn"]))
    except (TypeError, ValueError) as e:
        raise MBV1Error(f"meta['faster_rcnn'] is not a valid FasterRCNNConfig: {e}") from None


def is_faster_rcnn(meta: dict) -> bool:
    return isinstance(meta.get("faster_rcnn"), dict)
