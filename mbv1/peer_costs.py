"""The paper's comparison models counted from their public definitions (``mbv1 profile
--peers``): torchvision (and timm where torchvision has none) built with random weights, the
SSD300-VGG16 of torchvision's detection models, and mbv1's own FaceNet teacher, each counted by
:func:`mbv1.backbone.costs.count_costs` (mult-adds of convs and FCs, trainable params) beside
Tables 8-14's printed figures, with the reason where they differ."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from mbv1.backbone.costs import count_costs
from mbv1.profile_row import ProfileRow


@dataclass(frozen=True)
class Peer:
    """One printed comparison model and the public definition counted for it."""

    table: str
    model: str  # as printed
    paper_mult_adds_m: float
    paper_params_m: float
    definition: str  # what is counted
    build: Callable[[], nn.Module] | None
    input_size: int = 224
    forward: Callable | None = None
    note: str = ""  # why the counted figure differs, where it does


def _tv(name: str, **kw) -> Callable[[], nn.Module]:
    def build():
        import torchvision

        return getattr(torchvision.models, name)(weights=None, **kw)
    return build


def _ssd300():
    from torchvision.models.detection import ssd300_vgg16

    return ssd300_vgg16(weights=None, weights_backbone=None, num_classes=91)


def _facenet():
    from facenet_pytorch import InceptionResnetV1

    return InceptionResnetV1(pretrained=None, classify=False)


def _images(model, x):  # torchvision detectors take a list of images
    return model(list(x))


PEERS = (
    Peer("Table 8", "GoogleNet", 1550, 6.8, "torchvision googlenet (no aux heads)",
         _tv("googlenet", aux_logits=False, init_weights=True),
         note="torchvision's GoogLeNet keeps a 3x3 conv where the original's 5x5 branch is "
              "(a known bug kept for its weights) and adds BatchNorm: 3 % fewer mult-adds and "
              "params than the paper's figures of the original"),
    Peer("Table 8", "VGG 16", 15300, 138, "torchvision vgg16", _tv("vgg16"),
         note="15.47 B with the three FC layers (0.12 B); the convs alone count 15.35 B, "
              "the printed 15.3 B"),
    Peer("Table 9", "Squeezenet", 1700, 1.25, "torchvision squeezenet1_0",
         _tv("squeezenet1_0"),
         note="1.25 M params agree; the printed 1700 M are about twice the 0.82 B mult-adds "
              "(FLOPs, one multiply and one add each, not mult-adds)"),
    Peer("Table 9", "Squeezenet (v1.1)", 1700, 1.25, "torchvision squeezenet1_1",
         _tv("squeezenet1_1"), note="SqueezeNet 1.1 (2.4x cheaper than 1.0), not the paper's"),
    Peer("Table 9", "AlexNet", 720, 60, "torchvision alexnet (one-tower variant)",
         _tv("alexnet"), note="torchvision's is Krizhevsky 2014's one-tower AlexNet (714 M, "
                              "61.1 M); the paper prints the two-tower original's rounded "
                              "720 M / 60 M"),
    Peer("Table 10", "Inception V3", 5000, 23.2, "torchvision inception_v3, 120 classes, "
         "no aux head", _tv("inception_v3", num_classes=120, aux_logits=False,
                            init_weights=True), 299,
         note="5.7 B at Inception V3's 299 px: the printed 5000 M is a rounded figure; "
              "params 22.0 M with the 120-way FC (23.8 M with a 1000-way one, 24.6 M with the "
              "aux head): the printed 23.2 M fits none exactly"),
    Peer("Table 11", "PlaNet (Inception V3)", 5740, 52, "torchvision inception_v3, 26,263 "
         "classes, no aux head", _tv("inception_v3", num_classes=26_263, aux_logits=False,
                                     init_weights=True), 299,
         note="mult-adds agree; a 26,263-way FC on Inception V3's 2048 features alone is "
              "53.8 M: the paper's 52 M total cannot hold it"),
    Peer("Table 13", "SSD 300 deeplab-VGG", 34_900, 33.1, "torchvision ssd300_vgg16, 91 "
         "classes", _ssd300, 300, _images,
         note="mult-adds agree; torchvision's SSD300 (Liu et al.'s layout, fc6/fc7 as "
              "dilated convs) has 2.5 M more params than the paper's TF model, whose exact "
              "heads are not published"),
    Peer("Table 14", "FaceNet", 1600, 7.5, "mbv1's teacher: facenet-pytorch "
         "InceptionResnetV1, 512-d", _facenet, 160,
         note="mbv1's teacher is davidsandberg's 2018 InceptionResnetV1, not the paper's "
              "in-house FaceNet (1600 M, 7.5 M)"),
    Peer("Table 13", "SSD 300 Inception V2", 3_800, 13.7, "none", None,
         note="no Inception V2 (BN-Inception) in torchvision or timm"),
    Peer("Table 13", "Faster-RCNN 300/600 VGG", 64_300, 138.5, "none", None,
         note="torchvision's Faster R-CNNs are ResNet-50/MobileNetV3 FPNs: no VGG one"),
    Peer("Table 13", "Faster-RCNN 300/600 Inception V2", 118_200, 13.3, "none", None,
         note="no Inception V2 in torchvision or timm"),
)


def peer_rows(names: tuple[str, ...] | None = None) -> list[tuple[Peer, list[ProfileRow]]]:
    """Each peer (of ``names``, default all) with its counted rows (none when it has no
    public definition here)."""
    out = []
    for peer in PEERS:
        if names is not None and peer.model not in names:
            continue
        if peer.build is None:
            out.append((peer, []))
            continue
        model = peer.build()
        c = count_costs(model, peer.input_size, forward=peer.forward)
        name = f"{peer.model}: {peer.definition}"
        rows = [ProfileRow(peer.table, name, "mult-adds", "M", peer.paper_mult_adds_m,
                           c.mult_adds / 1e6, peer.note),
                ProfileRow(peer.table, name, "params", "M", peer.paper_params_m, c.params / 1e6,
                           peer.note)]
        out.append((peer, rows))
    return out
