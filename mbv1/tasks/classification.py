"""Image classification (Tables 4–9, ImageNet) and fine-grained recognition (Table 10, Stanford
Dogs): MobileNetV1 with its FC classifier, cross-entropy, top-1 / top-5 / per-class accuracy.

Data layouts (``data.layout``): ``folder`` (any ``<class>/<image>`` tree, ILSVRC's included,
see :mod:`mbv1.datasets.folder`), ``stanford-dogs`` (:mod:`mbv1.datasets.dogs`) or ``auto``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mbv1 import paper
from mbv1.backbone import set_bn_momentum
from mbv1.classification.model import build_model
from mbv1.datasets import augment
from mbv1.datasets.classification import ClassificationDataset
from mbv1.datasets.dogs import is_stanford_dogs, read_stanford_dogs
from mbv1.datasets.folder import SampleSet, read_folder_dataset
from mbv1.engine.config import DataConfig, choice
from mbv1.engine.task import Datasets, Metrics, Task, row_dict
from mbv1.errors import MBV1Error


@dataclass
class ClassificationData(DataConfig):
    """``data`` section of the classification tasks."""

    layout: str = choice("auto", "auto", "folder", "stanford-dogs")
    val_labels: str | None = None  # labels file of a flat ILSVRC val/ folder
    crop_to_box: bool = False  # Stanford Dogs: crop to the annotated dog boxes


class ClassificationTask(Task):
    """MobileNetV1 + FC over the labels of an image folder or ILSVRC tree (Tables 4–9)."""

    name = "classification"
    sections = {"data": ClassificationData}
    primary_metric = "top1"
    paper_metric = paper.IMAGENET
    paper_classes = 1000

    # -- data ----------------------------------------------------------------------------
    def read_samples(self) -> SampleSet:
        d = self.cfg.data
        if not d.path:
            raise MBV1Error(f"task {self.name} needs data: pass --data DIR (an image folder, an "
                            "ILSVRC tree or Stanford Dogs as distributed)")
        root = Path(d.path)
        if not root.exists():
            raise MBV1Error(f"data folder not found: {root}")
        if not root.is_dir():
            raise MBV1Error(f"--data {root} is a file: pass the folder that holds the class "
                            "folders (<data>/<class>/<image>)")
        layout = d.layout
        if layout == "auto":
            layout = "stanford-dogs" if is_stanford_dogs(root) else "folder"
        if layout == "stanford-dogs":
            return read_stanford_dogs(root, d.crop_to_box)
        return read_folder_dataset(root, d.val_path, d.val_labels, d.val_split, d.split_seed)

    def _dataset(self, samples, train: bool, split: str) -> ClassificationDataset:
        d, res = self.cfg.data, self.cfg.model.resolution
        if train:
            tf = augment.train_transform(res, d.augment, d.crop_scale, d.hflip, d.color_jitter,
                                         d.eval_crop)
        else:
            tf = augment.eval_transform(res, d.eval_crop)
        ds = ClassificationDataset(samples, tf, d.mean, d.std,
                                   self.cfg.train.seed if train else None, d.on_bad_image)
        ds.split = split
        return ds

    def build_datasets(self) -> Datasets:
        s = self.read_samples()
        if len(s.labels) < 2:
            raise MBV1Error(_one_class(Path(self.cfg.data.path), s.labels))
        info = {"labels": s.labels, "num_classes": len(s.labels), "layout": s.layout,
                "train_split": s.train_split}
        if s.label_names:
            info["label_names"] = s.label_names
        val = self._dataset(s.val, False, s.val_split) if s.val else None
        return Datasets(self._dataset(s.train, True, s.train_split), val, info, s.val_split)

    def build_eval_dataset(self, info: dict):
        s = self.read_samples()
        want = info.get("labels") or s.labels
        index = {name: i for i, name in enumerate(want)}
        missing = [name for name in s.labels if name not in index]
        if missing:
            raise MBV1Error(f"the data has classes the checkpoint was not trained on: "
                            f"{missing[:5]} ({len(missing)} in all)")
        remap = [index[name] for name in s.labels]
        samples = [type(x)(x.path, remap[x.label], x.box) for x in s.val]
        if not samples:
            raise MBV1Error(f"no evaluation images in {self.cfg.data.path}")
        return self._dataset(samples, False, s.val_split), s.val_split

    # -- model ---------------------------------------------------------------------------
    def build_model(self, info: dict) -> nn.Module:
        return set_bn_momentum(build_model(info, asdict(self.cfg.model)),
                               self.cfg.model.bn_momentum)

    def forward_loss(self, model, batch, teacher=None) -> dict[str, torch.Tensor]:
        logits = model(batch["image"])
        loss = F.cross_entropy(logits.float(), batch["label"],
                               label_smoothing=self.cfg.train.label_smoothing)
        return {"loss": loss}

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(self, model, loader, teacher=None) -> Metrics:
        num_classes = model.num_classes
        k = min(5, num_classes)
        top_k = torch.zeros((), dtype=torch.int64, device=self.device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        preds, targets = [], []  # on the device; one copy to the host at the end
        for batch in loader:
            if batch is None:
                continue
            batch = self.to_device(batch)
            logits = model(batch["image"]).float()
            target = batch["label"]
            loss_sum += F.cross_entropy(logits, target, reduction="sum").double()
            topk = logits.topk(k, dim=1).indices
            top_k += (topk == target[:, None]).any(dim=1).sum()
            preds.append(topk[:, 0])
            targets.append(target)
        if not targets:
            raise MBV1Error("evaluation saw no readable images")
        target, pred = torch.cat(targets).cpu(), torch.cat(preds).cpu()
        n = int(target.numel())
        # bincount on the CPU: its CUDA kernel is not deterministic
        cm = torch.bincount(target * num_classes + pred,
                            minlength=num_classes * num_classes).view(num_classes, num_classes)
        per_class = cm.diag().double() / cm.sum(1).clamp(min=1).double()
        present = cm.sum(1) > 0
        # With fewer than 5 classes "top5" is top-(number of classes), i.e. 100%.
        values = {"top1": 100.0 * float(cm.diag().sum()) / n, "top5": 100.0 * float(top_k) / n,
                  "mean_class_acc": 100.0 * float(per_class[present].mean()),
                  "loss": float(loss_sum) / n, "images": float(n)}
        return Metrics(values, "top1", getattr(loader.dataset, "split", "val"),
                       details=_details(cm))

    # -- reporting -----------------------------------------------------------------------
    def paper_rows(self, info: dict) -> list[dict]:
        """The paper's rows at this α and resolution; without one, those at this α (other
        resolutions) as the nearest, marked not comparable."""
        m = self.cfg.model
        rows = paper.rows_for(self.paper_metric, m.alpha, m.resolution, m.variant, m.backbone)
        exact = bool(rows)
        if not exact:
            rows = paper.rows_for(self.paper_metric, m.alpha, None, m.variant, m.backbone)
        same_data = info.get("num_classes") == self.paper_classes
        out = []
        for r in rows:
            notes = [] if exact else [f"nearest: the paper has α={m.alpha} at {r.resolution} px, "
                                      f"not {m.resolution}"]
            if not same_data:
                notes.append(f"other data: the paper has {self.paper_classes} classes, this run "
                             f"{info.get('num_classes')}")
            out.append(row_dict(r, exact and same_data, "; ".join(notes)))
        return out

    def describe(self, metrics: Metrics, info: dict) -> list[str]:
        labels = info.get("labels") or []
        d = metrics.details
        lines = []
        acc = d.get("per_class_acc") or []
        counts = d.get("per_class_count") or []
        shown = sorted(range(len(acc)), key=lambda i: acc[i])
        if len(shown) > 20:
            lines.append("per-class accuracy (20 worst of %d):" % len(shown))
            shown = shown[:20]
        else:
            lines.append("per-class accuracy:")
        lines += [f"  {labels[i] if i < len(labels) else i}: {acc[i]:.1f}% of {counts[i]}"
                  for i in shown if counts[i]]
        pairs = d.get("confused") or []
        if pairs:
            lines.append("most confused (true -> predicted: images):")
            lines += [f"  {labels[t]} -> {labels[p]}: {c}" for t, p, c in pairs[:10]]
        else:
            lines.append("no confusions")
        return lines


class FineGrainedTask(ClassificationTask):
    """Stanford Dogs (Table 10) and other fine-grained sets: the same model and loss."""

    name = "fine-grained"
    defaults = {"data": {"layout": "auto"}}
    paper_metric = paper.DOGS
    paper_classes = 120


def _one_class(root: Path, labels: list[str]) -> str:
    """A classifier needs two classes: say what the one folder found is, and where the class
    folders probably are (``--data`` one level too high)."""
    name = labels[0] if labels else "?"
    inner = next((p for p in (root / name, root / "train" / name) if p.is_dir()), None)
    nested = inner is not None and any(c.is_dir() for c in inner.iterdir())
    hint = (f"if {inner} holds the class folders, pass --data {inner}" if nested else
            "put each class's images in a folder of its own: <data>/<class>/<image>")
    return (f"{root} holds one class ({name!r}): a classifier needs at least two classes; "
            f"{hint}")


def _details(cm: torch.Tensor) -> dict:
    """Per-class accuracy and the most confused pairs of a confusion matrix [true, pred]."""
    counts = cm.sum(1)
    acc = (100.0 * cm.diag().double() / counts.clamp(min=1).double()).tolist()
    off = cm.clone()
    off.fill_diagonal_(0)
    flat = off.flatten()
    top = flat.topk(min(10, flat.numel())).indices.tolist() if flat.numel() else []
    c = cm.shape[0]
    confused = [[i // c, i % c, int(flat[i])] for i in top if int(flat[i]) > 0]
    return {"per_class_acc": acc, "per_class_count": counts.tolist(), "confused": confused}
