"""The face distillation tasks (Tables 12 and 14): ``mbv1 train face-attributes``,
``face-embeddings`` and ``faces``.

One task class, :class:`FaceDistillTask`, parametrised by the head groups it trains:

* ``face-attributes`` (Table 12): gender (2-way) and expression (7-way) heads learn face-api's
  probabilities by cross-entropy to them (the paper's emulation loss), the age head its age by
  a Huber loss; or, on CelebA, the 40 attributes from the ground truth (``supervised``), or both
  (``mixed``);
* ``face-embeddings`` (Table 14): the embedding (L2-normalised, any size; a projection to the
  teacher's size when it differs) learns FaceNet's by squared L2 distance (the paper's loss);
* ``faces``: both groups of heads on one shared body, in one run.

Data (``--data``): nothing (the embedded default: faces of the real photos and videos in the
asset cache, :mod:`mbv1.faces.default_data`), a folder / glob / video of photos or videos (faces
are detected, aligned and cached once), a crop cache folder, or CelebA as distributed. Sources
are held out whole (``data.holdout`` names them; else ``data.val_split`` of them, seeded by
``data.split_seed``), never frames of a video seen in training.

Teachers are frozen and run once per crop (and its mirror image) before training; their
outputs are cached beside the crops (:mod:`mbv1.faces.targets`), so nothing of a teacher is
in the training loop or under DDP. No weight decay by default (the paper).
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mbv1 import paper
from mbv1.backbone import set_bn_momentum
from mbv1.engine.config import DataConfig, ModelConfig, choice
from mbv1.engine.task import Datasets, Metrics, Task, row_dict
from mbv1.errors import MBV1Error
from mbv1.faces.losses import embedding_loss, soft_cross_entropy
from mbv1.faces.model import HeadsConfig
from mbv1.faces.prepare import teacher_targets, training_sources
from mbv1.faces.shared import SharedConfig
from mbv1.faces.sources import balance_by_source
from mbv1.faces.student import build_model

__all__ = ["DistillConfig", "FaceAttributesTask", "FaceData", "FaceDistillTask",
           "FaceEmbeddingsTask", "FaceModelConfig", "FacesTask"]

ATTRIBUTE_HEADS = ("gender", "expression", "age")


@dataclass
class FaceData(DataConfig):
    """``data`` section of the face tasks (besides ``path``, ``val_path``, ``val_split``...)."""

    vid_stride: int = 1  # every N-th frame of a video
    max_frames: int = 0  # per source; 0 = all
    detector: str = choice("ssd", "ssd", "mtcnn")
    crop: str = choice("box", "box", "aligned")  # canonical crop policy (mbv1.faces.align)
    crop_size: int = 160
    margin: int = 32
    landmarks: bool = True  # MTCNN 5-point landmarks (box policy: MTCNN's box when found)
    cache: str | None = None  # crop cache folder (default: under the mbv1 cache)
    holdout: list[str] = field(default_factory=list)  # source names held out for evaluation
    pairs: str | None = None  # an LFW pairs.txt over val_path (or path) for verification
    degrade: float = 0.0  # probability of a random low-resolution copy of a training crop
    balance_sources: bool = False  # oversample small sources to the size of the largest
    celeba_mode: str = choice("supervised", "supervised", "distill", "mixed")
    celeba_eval: str = choice("val", "val", "test")


@dataclass
class FaceModelConfig(ModelConfig):
    """``model`` section of the face tasks: ``heads=separate`` (a face student, a MobileNetV1
    of its own on each face crop) or ``shared`` (the heads read the face detector's body at
    each detected box: one backbone pass per frame, :mod:`mbv1.faces.shared`; its settings in
    the ``shared`` section)."""

    heads: str = choice("separate", "separate", "shared")


@dataclass
class DistillConfig:
    """``distill`` section: teachers, embedding size and loss weights."""

    attribute_teacher: str = "face-api"
    embedding_teacher: str = "facenet"
    embedding_dim: int = 512
    age_weight: float = 1.0  # Huber (δ = 1 year) on age, in years
    embedding_weight: float = 1.0
    celeba_weight: float = 1.0
    max_negatives: int = 20_000  # verification: negatives beyond this are subsampled
    # feature distillation (FitNets hints) from a pretrained body, e.g. face-ssd; None = off
    feature_teacher: str | None = None
    feature_layers: list[str] = field(default_factory=lambda: ["conv11", "conv13"])
    feature_weight: float = 1.0


# Settings every face recipe shares (the paper: no weight decay for the face tasks).
FACE_COMMON = {
    "train": {"optimizer": "adamw", "weight_decay": 0.0, "schedule": "cosine", "batch_size": 32,
              "workers": 0, "warmup_epochs": 1.0},
    "model": {"dropout": 0.0, "resolution": 128},
    "data": {"val_split": 0.25, "hflip": True},
}


def face_recipe(freeze: str, note: str) -> dict:
    """The best recipe measured on the embedded faces (docs/faces.md): α=1 at 128 px from the
    face detector's pretrained body (WIDER FACE), ``freeze`` and below frozen, 15 epochs."""
    return {
        "train": {**FACE_COMMON["train"], "epochs": 15, "lr": 1e-3},
        "model": {**FACE_COMMON["model"], "alpha": 1.0, "init": "face-ssd", "freeze": freeze},
        "data": dict(FACE_COMMON["data"]),
        "run": {"recipe": f"face-ssd body init (WIDER FACE), conv0-{freeze[4:]} frozen, AdamW "
                          f"1e-3 cosine 15 ep, batch 32, no weight decay ({note}); the paper's "
                          "α=0.25 student: --config configs/faces/paper_0.25_128.yaml"},
    }


# Each face task's default: the best recipe measured for it (configs/faces/ spells them out,
# docs/faces.md has the figures). With attribute heads (face-attributes, faces) conv10-13 train:
# better attributes on three seeds, and the only recipe whose bare `faces` run beat the constant
# on every held-out figure; the embedding alone trains conv12-13 (a better embedding).
ATTRIBUTE_RECIPE = face_recipe("conv9", "configs/faces/face-ssd-attributes_1.0_128.yaml")
EMBEDDING_RECIPE = face_recipe("conv11", "configs/faces/face-ssd_1.0_128.yaml")


class FaceDistillTask(Task):
    """MobileNetV1 student with face heads (see the module docstring)."""

    name = "faces"
    groups: tuple[str, ...] = ("attributes", "embeddings")
    sections: ClassVar[dict[str, type]] = {"data": FaceData, "distill": DistillConfig,
                                           "model": FaceModelConfig, "shared": SharedConfig}
    defaults: ClassVar[dict] = ATTRIBUTE_RECIPE
    primary_metric = "mean_ap"
    paper_metric = paper.FACE_ATTR

    def __init__(self, cfg, device="cpu"):
        super().__init__(cfg, device)
        self.info: dict = {}
        self._detector = None

    @property
    def takes_init(self) -> bool:
        """The shared model's body is its detector's (``shared.detector``), not ``model.init``."""
        return not self.shared

    @property
    def shared(self) -> bool:
        """The shared face model (``model.heads=shared``) rather than a face student."""
        return self.cfg.model.heads == "shared"

    def _shared_detector(self):
        """``(SSD, Preprocess, SharedConfig)`` of ``shared.detector``, loaded once."""
        if self._detector is None:
            from mbv1.tasks.faces_shared import shared_detector

            self._detector = shared_detector(self.cfg)
        return self._detector

    # -- data ------------------------------------------------------------------------------
    def _log(self, msg: str) -> None:
        # progress of data preparation: stderr, so that `mbv1 eval --json` prints only JSON
        print(msg, file=sys.stderr, flush=True)

    def _heads(self, celeba, teacher_dim: int) -> HeadsConfig:
        heads: list[str] = []
        if "attributes" in self.groups:
            if celeba is None or self.cfg.data.celeba_mode != "supervised":
                heads += list(ATTRIBUTE_HEADS)
            if celeba is not None and self.cfg.data.celeba_mode != "distill":
                heads.append("celeba")
        if "embeddings" in self.groups:
            heads.append("embedding")
        hints = self._feature_teacher().channels if self.cfg.distill.feature_teacher else {}
        return HeadsConfig(heads, self.cfg.distill.embedding_dim, teacher_dim,
                           len(celeba.names) if celeba is not None else 40, hints)

    def _feature_teacher(self):
        """The frozen body of ``distill.feature_teacher`` (loaded once)."""
        if getattr(self, "_ft", None) is None:
            from mbv1.faces.feature_teacher import load_feature_teacher

            d = self.cfg.data
            self._ft = load_feature_teacher(self.cfg.distill.feature_teacher,
                                            list(self.cfg.distill.feature_layers), d.mean, d.std)
        return self._ft

    def build_teacher(self):
        return self._feature_teacher() if self.cfg.distill.feature_teacher else None

    def build_datasets(self) -> Datasets:
        from mbv1.faces.data import FaceCropDataset

        # Under torchrun rank 0 detects, crops and runs the teachers first; the other ranks
        # then find everything in the caches.
        src, train_idx, val_idx, split, celeba = _rank0_first(
            lambda: training_sources(self.cfg.data, str(self.device), self._log))
        if not train_idx:
            raise MBV1Error(f"no training faces: the data held {len(src)} faces, all in the "
                            "held-out sources; add data or change data.holdout / data.val_split")
        targets = _rank0_first(lambda: teacher_targets(src, self.groups, self.cfg.data,
                                                        self.cfg.distill, celeba,
                                                        str(self.device), self._log))
        teacher_dim = int(targets["embedding"].shape[-1]) if "embedding" in targets else 512
        heads = self._heads(celeba, teacher_dim)
        info = self._info(src, heads, targets, train_idx, val_idx, split, celeba)
        self.info = info
        d, res = self.cfg.data, self.cfg.model.resolution
        ca = celeba.attributes if celeba is not None else None
        if d.balance_sources and celeba is None:
            train_idx = balance_by_source(src.records, train_idx)
        if self.shared:
            from mbv1.tasks.faces_shared import shared_datasets

            det, pre, shared = self._shared_detector()
            self._src = src
            return shared_datasets(src, train_idx, val_idx, split, targets, heads, info, det,
                                   pre, shared, self.cfg, str(self.device), self._log)
        train = FaceCropDataset(src, train_idx, res, d.mean, d.std, targets, train=True,
                                seed=self.cfg.train.seed, celeba=ca, hflip=d.hflip,
                                degrade=d.degrade, color_jitter=d.color_jitter)
        val = None
        if val_idx:
            val = FaceCropDataset(src, val_idx, res, d.mean, d.std, targets, celeba=ca)
            val.split = split
        self._src = src
        return Datasets(train, val, info, split)

    def build_eval_dataset(self, info: dict):
        ds = self.build_datasets()
        self.info = {**info, **{k: ds.info[k] for k in ("pairs_note",) if k in ds.info}}
        if ds.val is None:
            raise MBV1Error("no held-out faces to evaluate on: pass data.val_path or "
                            "data.holdout")
        return ds.val, ds.val_split

    def _info(self, src, heads, targets, train_idx, val_idx, split, celeba) -> dict:
        info: dict = {"heads": heads.to_dict(), "groups": list(self.groups),
                      "crop": dict(getattr(src, "meta", {}).get("pipeline") or {}),
                      "split": split, "train_faces": len(train_idx), "val_faces": len(val_idx),
                      "teachers": {}, "prior": {}}
        if "age" in targets:
            info["teachers"]["attributes"] = self.cfg.distill.attribute_teacher
            tr = np.asarray(train_idx)
            info["prior"].update({
                "gender": targets["gender"][tr, 0].mean(0).round(6).tolist(),
                "expression": targets["expression"][tr, 0].mean(0).round(6).tolist(),
                "age": round(float(targets["age"][tr, 0].mean()), 4)})
        if "embedding" in targets:
            info["teachers"]["embeddings"] = self.cfg.distill.embedding_teacher
            mean = targets["embedding"][np.asarray(train_idx), 0].mean(0)
            info["prior"]["embedding"] = (mean / max(np.linalg.norm(mean), 1e-12)).round(6).tolist()
        if celeba is not None:
            info["celeba_names"] = list(celeba.names)
            pos = (celeba.attributes[np.asarray(train_idx)] > 0).mean(0)
            info["prior"]["celeba"] = pos.round(6).tolist()
        from mbv1.teachers.face_api_nets import EXPRESSIONS, GENDERS

        info["labels"] = {"gender": list(GENDERS), "expression": list(EXPRESSIONS)}
        return info

    # -- model -----------------------------------------------------------------------------
    def build_model(self, info: dict) -> nn.Module:
        self.info = info or self.info
        if self.shared and info.get("shared"):
            from mbv1.faces.shared import build_shared

            return build_shared(info, self._shared_detector()[0])
        return set_bn_momentum(build_model(info, asdict(self.cfg.model)),
                               self.cfg.model.bn_momentum)

    def cost_forward(self):
        if self.shared:  # a frame with one face: the whole detector, then the heads once
            from mbv1.faces.shared import frame_and_face

            return frame_and_face
        return lambda model, x: model.forward_heads_only(x)

    def _outputs(self, model, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The heads' outputs for a batch (the shared model: on its RoI features)."""
        return model(images, from_rois=True) if self.shared else model(images)

    # -- loss ------------------------------------------------------------------------------
    def forward_loss(self, model, batch, teacher=None) -> dict[str, torch.Tensor]:
        out = self._outputs(model, batch["image"])
        dc = self.cfg.distill
        parts: dict[str, torch.Tensor] = {}
        for head in ("gender", "expression"):
            if head in out and f"t_{head}" in batch:
                parts[head] = soft_cross_entropy(out[head].float(), batch[f"t_{head}"])
        if "age" in out and "t_age" in batch:
            parts["age"] = dc.age_weight * F.smooth_l1_loss(out["age"].float(), batch["t_age"])
        if "embedding" in out and "t_embedding" in batch:
            emb = out.get("embedding_teacher", out["embedding"]).float()
            parts["embedding"] = dc.embedding_weight * embedding_loss(emb, batch["t_embedding"])
        if "celeba" in out and "celeba" in batch:
            bce = F.binary_cross_entropy_with_logits(out["celeba"].float(), batch["celeba"],
                                                     reduction="none")
            mask = batch["celeba_mask"]
            parts["celeba"] = dc.celeba_weight * (bce * mask).sum() / mask.sum().clamp(min=1)
        hints = {k[len("hint_"):]: v for k, v in out.items() if k.startswith("hint_")}
        if hints and teacher is not None:
            from mbv1.faces.feature_teacher import feature_loss

            parts["features"] = dc.feature_weight * feature_loss(hints, teacher(batch["image"]))
        if not parts:
            raise MBV1Error("the batch has no target for any head of this model")
        return {"loss": sum(parts.values()), **parts}

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(self, model, loader, teacher=None) -> Metrics:
        from mbv1.faces.evaluation import collect, face_metrics

        r = collect(model, loader, self.to_device, self._outputs)
        d = self.cfg.data
        values, details = face_metrics(r, self.info or {}, loader.dataset.source.records,
                                       d.pairs, d.val_path or d.path,
                                       self.cfg.distill.max_negatives, d.split_seed)
        primary = self.primary_metric
        if primary not in values:
            primary = next((k for k in ("celeba_mean_ap", "cosine", "mean_ap") if k in values),
                           "faces")
        return Metrics(values, primary, getattr(loader.dataset, "split", "val"), details=details)

    # -- reporting -------------------------------------------------------------------------
    def paper_rows(self, info: dict) -> list[dict]:
        m = self.cfg.model
        rows = []
        crop = (info.get("crop") or {}).get("policy", "?")
        if "attributes" in self.groups:
            rows += _rows(paper.TABLE12, paper.FACE_ATTR, m.alpha, m.resolution,
                          "paper: in-house faces, its teacher's labels; mbv1: mean AP vs "
                          f"{(info.get('teachers') or {}).get('attributes', 'CelebA')} labels on "
                          f"{info.get('split', '?')}")
        if "embeddings" in self.groups:
            rows += _rows(paper.TABLE14, paper.FACE_EMB, m.alpha, m.resolution,
                          "paper: TAR@FAR=1e-4 on its pairs; mbv1: see verif_* and cosine "
                          f"(crop: {crop}; {paper.QUIRKS['lfw_crop']})")
        return rows

    def describe(self, metrics: Metrics, info: dict) -> list[str]:
        from mbv1.faces.evaluation import describe_metrics

        return describe_metrics(metrics.values, metrics.details, info)


class FaceAttributesTask(FaceDistillTask):
    """Table 12: the face-attribute student."""

    name = "face-attributes"
    groups = ("attributes",)
    primary_metric = "mean_ap"
    paper_metric = paper.FACE_ATTR


class FaceEmbeddingsTask(FaceDistillTask):
    """Table 14: the face-embedding student."""

    name = "face-embeddings"
    groups = ("embeddings",)
    defaults = EMBEDDING_RECIPE
    primary_metric = "cosine"
    paper_metric = paper.FACE_EMB


class FacesTask(FaceDistillTask):
    """Tables 12 + 14 on one backbone: attribute heads and the embedding head, one pass."""

    name = "faces"
    groups = ("attributes", "embeddings")
    primary_metric = "mean_ap"
    paper_metric = paper.FACE_ATTR


# --------------------------------------------------------------------------- helpers


def _rank0_first(fn):
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return fn()
    if dist.get_rank() == 0:
        out = fn()
        dist.barrier()
        return out
    dist.barrier()
    return fn()


def _rows(table, metric: str, alpha: float, res: int, note: str) -> list[dict]:
    """The paper's rows at this α and resolution; else the nearest one (α first), marked."""
    exact = paper.rows_for(metric, alpha, res)
    if exact:
        return [row_dict(r, False, note) for r in exact]
    rows = [r for r in table if r.alpha is not None]
    best = min(rows, key=lambda r: (abs(r.alpha - alpha), abs(r.resolution - res)))
    return [row_dict(best, False, f"nearest row (this run: α={alpha}, {res} px); " + note)]
