"""Face attributes by distillation (Table 12): ``mbv1 train face-attributes``.

A MobileNetV1 student (any α and resolution) with one head per attribute group (gender 2-way,
expression 7-way, age regression) learns face-api's age/gender and expression nets' outputs on
unlabeled faces (cross-entropy to the teacher's probabilities, the paper's emulation loss; Huber
on age; no weight decay), or CelebA's 40 attributes (supervised, or mixed with the teacher).
Evaluation: mean AP over attributes against the teacher's labels (or CelebA's ground truth),
plus teacher agreement against a constant predictor. See :mod:`mbv1.faces.distill`, docs/faces.md.
"""

from __future__ import annotations

from mbv1 import paper
from mbv1.faces.distill import ATTRIBUTE_RECIPE, FaceDistillTask


class FaceAttributesTask(FaceDistillTask):
    """Table 12: the face-attribute student."""

    name = "face-attributes"
    groups = ("attributes",)
    defaults = ATTRIBUTE_RECIPE
    primary_metric = "mean_ap"
    paper_metric = paper.FACE_ATTR
