"""Face embeddings by FaceNet distillation (Table 14): ``mbv1 train face-embeddings``; and
``mbv1 train faces``, attributes and embedding on one shared backbone.

The student's L2-normalised embedding (any size; a linear projection to the teacher's 512
dimensions when it differs, used by the loss only) learns FaceNet's by squared L2 distance (the
paper's loss). Evaluation: cosine to the teacher against a constant embedding, and verification
on pairs (LFW ``pairs.txt``, or pairs from identities: video tracks, identity folders) by the
10-fold protocol, TAR at FAR 1e-3 / 1e-4 and ROC AUC, student and teacher side by side.
See :mod:`mbv1.faces.distill` and docs/faces.md.
"""

from __future__ import annotations

from mbv1 import paper
from mbv1.faces.distill import FaceDistillTask


class FaceEmbeddingsTask(FaceDistillTask):
    """Table 14: the face-embedding student."""

    name = "face-embeddings"
    groups = ("embeddings",)
    primary_metric = "cosine"
    paper_metric = paper.FACE_EMB


class FacesTask(FaceDistillTask):
    """Tables 12 + 14 on one backbone: attribute heads and the embedding head, one pass."""

    name = "faces"
    groups = ("attributes", "embeddings")
    primary_metric = "mean_ap"
    paper_metric = paper.FACE_ATTR
