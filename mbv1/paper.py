"""The paper's numbers as data: Howard et al. 2017, arXiv:1704.04861, Tables 2–14; and, for the
second body, MobileNetV2's (TF-slim's checkpoint table, Sandler et al. 2018's Table 6).

The single place that ``mbv1 profile``, ``mbv1 eval`` and ``mbv1 report`` read the paper from.
Units: ``mult_adds`` in millions (M) and ``params`` in millions unless a key says otherwise;
accuracies in percent. Each row names its table. Quirks of the printed paper are kept in
``QUIRKS`` and shown where they matter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PAPER = "Howard et al. 2017, MobileNets, arXiv:1704.04861"


@dataclass(frozen=True)
class Row:
    """One printed row: the model setting, the reported metric and its costs."""

    table: str
    model: str
    metric: str | None = None  # e.g. "ImageNet top-1"
    value: float | None = None  # the metric, percent
    mult_adds_m: float | None = None  # millions
    params_m: float | None = None  # millions
    alpha: float | None = None
    resolution: int | None = None
    variant: str = "separable"
    extra: dict = field(default_factory=dict)
    backbone: str = "mobilenet_v1"  # the body of the row (rows_for filters on it)


# Table 2: resource per layer type, 1.0 MobileNet-224 (percent of mult-adds, percent of params).
# The params column counts conv/FC weights only (no biases or BatchNorm): that reproduces it.
TABLE2 = {
    "pointwise": (94.86, 74.59),
    "depthwise": (3.06, 1.06),
    "stem": (1.19, 0.02),  # printed 1.19 mult-adds: see QUIRKS["table2_stem"]
    "fc": (0.18, 24.33),
}
TABLE2_CORRECTED = {"stem": 1.91}  # mult-adds share with the transposed digits put back
TABLE2_NAMES = {"pointwise": "Conv 1x1", "depthwise": "Conv DW 3x3", "stem": "Conv 3x3 (stem)",
                "fc": "Fully connected"}

# Table 3: one layer (D_K=3, M=N=512, D_F=14) shrunk step by step: (M mult-adds, M params).
TABLE3 = [
    ("Conv 3x3 512→512 at 14x14", 462.0, 2.36),
    ("Depthwise separable", 52.3, 0.27),
    ("α = 0.75", 29.6, 0.15),
    ("ρ = 0.714", 15.1, 0.15),
]

IMAGENET = "ImageNet top-1"
# Tables 4–9 (ImageNet). All MobileNet rows have a 1000-way FC.
IMAGENET_ROWS = [
    Row("Table 4", "Conv MobileNet", IMAGENET, 71.7, 4866, 29.3, 1.0, 224, "full"),
    Row("Table 4", "1.0 MobileNet-224", IMAGENET, 70.6, 569, 4.2, 1.0, 224),
    Row("Table 5", "0.75 MobileNet-224", IMAGENET, 68.4, 325, 2.6, 0.75, 224),
    Row("Table 5", "Shallow MobileNet", IMAGENET, 65.3, 307, 2.9, 1.0, 224, "shallow"),
    Row("Table 6", "0.5 MobileNet-224", IMAGENET, 63.7, 149, 1.3, 0.5, 224),
    Row("Table 6", "0.25 MobileNet-224", IMAGENET, 50.6, 41, 0.5, 0.25, 224),
    Row("Table 7", "1.0 MobileNet-192", IMAGENET, 69.1, 418, 4.2, 1.0, 192),
    Row("Table 7", "1.0 MobileNet-160", IMAGENET, 67.2, 290, 4.2, 1.0, 160),
    Row("Table 7", "1.0 MobileNet-128", IMAGENET, 64.4, 186, 4.2, 1.0, 128),
    Row("Table 9", "0.50 MobileNet-160", IMAGENET, 60.2, 76, 1.32, 0.5, 160),
]
IMAGENET_PEERS = [
    Row("Table 8", "GoogleNet", IMAGENET, 69.8, 1550, 6.8),
    Row("Table 8", "VGG 16", IMAGENET, 71.5, 15300, 138),
    Row("Table 9", "Squeezenet", IMAGENET, 57.5, 1700, 1.25),
    Row("Table 9", "AlexNet", IMAGENET, 57.2, 720, 60),
]
# Analytic counts the paper's rounded figures come from (conv + FC weights + FC bias + BN
# affine; mult-adds of conv and FC). Keyed by (alpha, resolution, variant).
ANALYTIC = {
    (1.0, 224, "separable"): (4_231_976, 568.7),
    (0.75, 224, "separable"): (2_585_560, 325.4),
    (0.5, 224, "separable"): (1_331_592, 149.5),
    (0.25, 224, "separable"): (470_072, 41.0),
    (1.0, 192, "separable"): (4_231_976, 418.1),
    (1.0, 160, "separable"): (4_231_976, 290.7),
    (1.0, 128, "separable"): (4_231_976, 186.4),
    (0.5, 160, "separable"): (1_331_592, 76.5),
}
RELEASED_IMAGENET = {
    "tf-slim 1.0-224 (2018 release)": 70.9,
    "timm mobilenetv1_100 (3600-epoch recipe)": 75.4,
}

# Table 10: Stanford Dogs (120 breeds; train 12,000 / test 8,580), top-1 after pretraining on a
# large noisy web dog set and fine-tuning on the train split.
DOGS = "Stanford Dogs top-1 (test split)"
TABLE10 = [
    Row("Table 10", "Inception V3", DOGS, 84.0, 5000, 23.2),
    Row("Table 10", "1.0 MobileNet-224", DOGS, 83.3, 569, 3.3, 1.0, 224),
    Row("Table 10", "0.75 MobileNet-224", DOGS, 81.9, 325, 1.9, 0.75, 224),
    Row("Table 10", "1.0 MobileNet-192", DOGS, 81.9, 418, 3.3, 1.0, 192),
    Row("Table 10", "0.75 MobileNet-192", DOGS, 80.5, 239, 1.9, 0.75, 192),
]

# Table 11: geolocalization on Im2GPS, percent of photos within each distance.
TABLE11_SCALES_KM = {"continent": 2500, "country": 750, "region": 200, "city": 25, "street": 1}
TABLE11 = {  # scale: (Im2GPS, PlaNet, PlaNet MobileNet)
    "continent": (51.9, 77.6, 79.3),
    "country": (35.4, 64.0, 60.3),
    "region": (32.1, 51.1, 45.2),
    "city": (21.9, 31.7, 31.7),
    "street": (2.5, 11.0, 11.4),
}
TABLE11_COLUMNS = ("Im2GPS", "PlaNet", "PlaNet MobileNet")
TABLE11_MODELS = [
    Row("Table 11", "PlaNet (Inception V3)", None, None, 5740, 52),
    # The paper prints "0.58 Million" mult-adds: a misprint for 0.58 billion (QUIRKS).
    Row("Table 11", "PlaNet MobileNet", None, None, 580, 13, 1.0, 224,
        extra={"body_params_m": 3, "final_layer_params_m": 10}),
]
PLANET_PARTITION = {"t1": 10_000, "t2": 50, "cells": 26_263}

# Table 12: face attributes by distillation, mean AP over attributes (in-house data).
FACE_ATTR = "face attributes mean AP"
TABLE12 = [
    Row("Table 12", "1.0 MobileNet-224", FACE_ATTR, 88.7, 568, 3.2, 1.0, 224),
    Row("Table 12", "0.5 MobileNet-224", FACE_ATTR, 88.1, 149, 0.8, 0.5, 224),
    Row("Table 12", "0.25 MobileNet-224", FACE_ATTR, 87.2, 45, 0.2, 0.25, 224),
    Row("Table 12", "1.0 MobileNet-128", FACE_ATTR, 88.1, 185, 3.2, 1.0, 128),
    Row("Table 12", "0.5 MobileNet-128", FACE_ATTR, 87.7, 48, 0.8, 0.5, 128),
    Row("Table 12", "0.25 MobileNet-128", FACE_ATTR, 86.4, 15, 0.2, 0.25, 128),
    Row("Table 12", "Baseline", FACE_ATTR, 86.9, 1600, 7.5),
]

# Table 13: COCO detection, mAP@[.5:.95] on COCO2014 minival (8k), trained on train+val minus
# minival. Mult-adds in billions here are converted to millions.
COCO = "COCO mAP@[.5:.95] (COCO2014 minival 8k)"
TABLE13 = [
    Row("Table 13", "SSD 300 deeplab-VGG", COCO, 21.1, 34_900, 33.1, extra={"framework": "SSD 300"}),
    Row("Table 13", "SSD 300 Inception V2", COCO, 22.0, 3_800, 13.7, extra={"framework": "SSD 300"}),
    Row("Table 13", "SSD 300 MobileNet", COCO, 19.3, 1_200, 6.8, 1.0, 300,
        extra={"framework": "SSD 300", "num_classes": 90}),
    Row("Table 13", "Faster-RCNN 300 VGG", COCO, 22.9, 64_300, 138.5),
    Row("Table 13", "Faster-RCNN 300 Inception V2", COCO, 15.4, 118_200, 13.3),
    Row("Table 13", "Faster-RCNN 300 MobileNet", COCO, 16.4, 25_200, 6.1, 1.0, 300,
        extra={"framework": "Faster-RCNN 300", "num_classes": 90, "proposals": 300,
               "quirk": "table13_faster_rcnn"}),
    Row("Table 13", "Faster-RCNN 600 VGG", COCO, 25.7, 149_600, 138.5),
    Row("Table 13", "Faster-RCNN 600 Inception V2", COCO, 21.9, 129_600, 13.3),
    Row("Table 13", "Faster-RCNN 600 MobileNet", COCO, 19.8, 30_500, 6.1, 1.0, 600,
        extra={"framework": "Faster-RCNN 600", "num_classes": 90, "proposals": 300,
               "quirk": "table13_faster_rcnn"}),
]

# Table 14: face embeddings distilled from FaceNet, "1e-4 accuracy" (read as TAR @ FAR=1e-4).
FACE_EMB = "face verification TAR@FAR=1e-4"
TABLE14 = [
    Row("Table 14", "FaceNet", FACE_EMB, 83.0, 1600, 7.5),
    Row("Table 14", "1.0 MobileNet-160", FACE_EMB, 79.4, 286, 4.9, 1.0, 160),
    Row("Table 14", "1.0 MobileNet-128", FACE_EMB, 78.3, 185, 5.5, 1.0, 128),
    Row("Table 14", "0.75 MobileNet-128", FACE_EMB, 75.2, 166, 3.4, 0.75, 128),
    # Printed as a second "0.75 MobileNet-128"; its costs fit α=0.75 at a lower resolution.
    Row("Table 14", "0.75 MobileNet-128 (second row)", FACE_EMB, 72.5, 108, 3.8, 0.75, 128,
        extra={"quirk": "table14_duplicate_row"}),
]

# MobileNetV2 (Sandler et al. 2018, arXiv:1801.04381), mbv1's second body.
V2_PAPER = "Sandler et al. 2018, MobileNetV2, arXiv:1801.04381"
V2_TABLE = "TF-slim V2"
V2_SOURCE = ("TF-slim's MobileNetV2 checkpoint table, tensorflow/models "
             "research/slim/nets/mobilenet/README.md")
# Every row of that table (all 22 checked against the README): (α, resolution, MACs M,
# params M, top-1 %, top-5 %). Params are conv + FC weights; MACs truncated (QUIRKS).
V2_SLIM = [
    (1.4, 224, 582, 6.06, 75.0, 92.5),
    (1.3, 224, 509, 5.34, 74.4, 92.1),
    (1.0, 224, 300, 3.47, 71.8, 91.0),
    (1.0, 192, 221, 3.47, 70.7, 90.1),
    (1.0, 160, 154, 3.47, 68.8, 89.0),
    (1.0, 128, 99, 3.47, 65.3, 86.9),
    (1.0, 96, 56, 3.47, 60.3, 83.2),
    (0.75, 224, 209, 2.61, 69.8, 89.6),
    (0.75, 192, 153, 2.61, 68.7, 88.9),
    (0.75, 160, 107, 2.61, 66.4, 87.3),
    (0.75, 128, 69, 2.61, 63.2, 85.3),
    (0.75, 96, 39, 2.61, 58.8, 81.6),
    (0.5, 224, 97, 1.95, 65.4, 86.4),
    (0.5, 192, 71, 1.95, 63.9, 85.4),
    (0.5, 160, 50, 1.95, 61.0, 83.2),
    (0.5, 128, 32, 1.95, 57.7, 80.8),
    (0.5, 96, 18, 1.95, 51.2, 75.8),
    (0.35, 224, 59, 1.66, 60.3, 82.9),
    (0.35, 192, 43, 1.66, 58.2, 81.2),
    (0.35, 160, 30, 1.66, 55.7, 79.1),
    (0.35, 128, 20, 1.66, 50.8, 75.0),
    (0.35, 96, 11, 1.66, 45.5, 70.4),
]
V2_IMAGENET_ROWS = [
    Row(V2_TABLE, f"mobilenet_v2_{a}_{r}", IMAGENET, top1, madds, params, a, r,
        extra={"top5": top5, "quirk": "v2_slim_counts"}, backbone="mobilenet_v2")
    for a, r, madds, params, top1, top5 in V2_SLIM
]
RELEASED_IMAGENET_V2 = {
    # asset mobilenet-v2: mobilenet_v2-b0353104.pth
    "torchvision mobilenet_v2 IMAGENET1K_V1": 71.878,
}

# MobileNetV2 paper Table 6: COCO detection at 320x320 (TF OD API), trained on trainval35k,
# evaluated on test-dev; mult-adds in billions converted to millions. SSD / YOLOv2 from YOLO9000.
COCO_V2 = "COCO mAP (test-dev, trained on trainval35k)"
V2_TABLE6_NAME = "MobileNetV2 Table 6"
V2_TABLE6 = [
    Row(V2_TABLE6_NAME, "SSD300", COCO_V2, 23.2, 35_200, 36.1),
    Row(V2_TABLE6_NAME, "SSD512", COCO_V2, 26.8, 99_500, 36.1),
    Row(V2_TABLE6_NAME, "YOLOv2", COCO_V2, 21.6, 17_500, 50.7),
    Row(V2_TABLE6_NAME, "MNet V1 + SSDLite", COCO_V2, 22.2, 1_300, 5.1, 1.0, 320,
        extra={"num_classes": 80, "head": "ssdlite", "cpu_ms": 270, "quirk": "v2_table6_classes"}),
    Row(V2_TABLE6_NAME, "MNet V2 + SSDLite", COCO_V2, 22.1, 800, 4.3, 1.0, 320,
        extra={"num_classes": 80, "head": "ssdlite", "cpu_ms": 200, "quirk": "v2_table6_classes"},
        backbone="mobilenet_v2"),
]

QUIRKS = {
    "table1_last_stride": "Table 1 prints the last depthwise conv as stride 2 at 7x7; the feature "
                          "map is already 7x7, and TF-slim and timm use stride 1 (so does mbv1).",
    "table2_stem": "misprint: the counted share is 1.91% (digits transposed; the printed rows "
                   "sum to 99.29%, with 1.91 to 100.01%)",
    "table11_units": "Table 11 prints PlaNet MobileNet's cost as 0.58 Million mult-adds; it is "
                     "0.58 billion (the 1.0-224 body alone is 569 M).",
    "table14_duplicate_row": "Table 14 prints two rows named 0.75 MobileNet-128 with different "
                             "costs and accuracies (75.2% at 166 M, 72.5% at 108 M).",
    "table13_faster_rcnn": "Table 13's Faster-RCNN MobileNet costs (25.2 / 30.5 B) are reproduced "
                           "by a 300x300 / 600x600 input, 300 proposals and the box classifier "
                           "(conv12 stride 2, conv13) at 7x7, i.e. the 14x14 crop fed to conv12 "
                           "without the 2x2 max-pool. The TF OD API layout (2x2 max-pool, box "
                           "classifier at 4x4) counts 9.5 / 14.8 B; a 4:3 COCO image with "
                           "shorter side 300 (300x400) counts 25.8 B.",
    "v2_slim_counts": "TF-slim's MobileNetV2 table counts params as conv and FC weights (no "
                      "BatchNorm, no biases: all trainable params of 1.0-224 are 3.50 M, printed "
                      "3.47) and truncates MACs to whole millions (1.0-224 counts 300.8 M, "
                      "printed 300); a 1000- or 1001-way FC gives the same printed figures.",
    "v2_table6_classes": "MobileNetV2 Table 6's MobileNet + SSDLite params are reproduced with "
                         "COCO's 80 classes (81 scores per anchor with the background; its "
                         "Table 5 says 'predictions for 80 classes'), TF \"SAME\" padding, "
                         "320x320: V2 4.34 M (4.28 M weights only), V1 5.10 M (5.06 M), both "
                         "within 1%. TF OD API's 90-id label map gives 4.50 / 5.25 M (+4.7% / "
                         "+2.9%). Mult-adds are printed to 0.1 B: 0.789 B and 1.309 B (80 "
                         "classes) or 0.804 / 1.322 B (90) all agree at that precision.",
    "coco_split": "The same TF model scores ~21 mAP on COCO2014 minival and ~26 on COCO2017 val: "
                  "always name the split.",
    "lfw_crop": "The face crop policy alone moves LFW accuracy by ~3 points: say how faces were "
                "aligned beside any verification number.",
}

ALL_ROWS = (IMAGENET_ROWS + IMAGENET_PEERS + TABLE10 + TABLE11_MODELS + TABLE12 + TABLE13
            + TABLE14 + V2_IMAGENET_ROWS + V2_TABLE6)


def rows_for(metric: str | None = None, alpha: float | None = None,
             resolution: int | None = None, variant: str = "separable",
             backbone: str = "mobilenet_v1") -> list[Row]:
    """Rows of a metric (e.g. ``IMAGENET``) matching α, resolution and variant when given; rows
    of a MobileNet setting only for that body (``backbone``)."""
    out = []
    for r in ALL_ROWS:
        if metric is not None and r.metric != metric:
            continue
        if alpha is not None and (r.alpha is None or abs(r.alpha - alpha) > 1e-9):
            continue
        if resolution is not None and r.resolution != resolution:
            continue
        if r.alpha is not None and (r.variant != variant or r.backbone != backbone):
            continue
        out.append(r)
    return out
