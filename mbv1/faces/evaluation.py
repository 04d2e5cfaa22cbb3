"""Evaluation of face students: outputs over a loader, then the figures of
:mod:`mbv1.faces.metrics` (attributes vs the teacher and a constant predictor, CelebA's
ground truth, embedding cosine and verification on pairs) and their readable lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mbv1.errors import MBV1Error
from mbv1.faces import metrics as M

__all__ = ["collect", "describe_metrics", "evaluation_pairs", "face_metrics"]


@torch.no_grad()
def collect(model, loader, to_device, forward=None) -> dict[str, np.ndarray]:
    """Student outputs (probabilities for gender / expression, ``celeba_score`` sigmoids) and
    the batches' targets over ``loader``, as numpy arrays; ``forward(model, images)`` gives
    the outputs of a batch (default ``model(images)``)."""
    acc: dict[str, list] = {}
    for batch in loader:
        if batch is None:
            continue
        batch = to_device(batch)
        out = forward(model, batch["image"]) if forward else model(batch["image"])
        for k, v in out.items():
            if k in ("gender", "expression"):
                v = v.float().softmax(1)
            elif k == "celeba":  # "celeba" is the batch's ground truth
                k, v = "celeba_score", v.float().sigmoid()
            acc.setdefault(k, []).append(v.float().cpu().numpy())
        for k, v in batch.items():
            if k.startswith("t_") or k in ("index", "celeba", "celeba_mask"):
                acc.setdefault(k, []).append(torch.as_tensor(v).cpu().numpy())
    if not acc:
        raise MBV1Error("evaluation saw no faces")
    return {k: np.concatenate(v) for k, v in acc.items()}


def face_metrics(r: dict[str, np.ndarray], info: dict, records: list, pairs_file: str | None = None,
                 pairs_root: str | None = None, max_negatives: int = 20_000,
                 seed: int = 0) -> tuple[dict[str, float], dict]:
    """``(values, details)`` of collected outputs ``r``; ``info`` holds the constant
    predictor (``prior``) and CelebA's attribute names; ``records`` the faces (for pairs)."""
    prior = info.get("prior") or {}
    values: dict[str, float] = {"faces": float(len(r["index"]))}
    details: dict = {}
    if "gender" in r and "t_gender" in r:
        v, det = M.attribute_metrics(
            {"gender": r["gender"], "expression": r["expression"], "age": r["age"]},
            {"gender": r["t_gender"], "expression": r["t_expression"], "age": r["t_age"]},
            {k: np.asarray(prior[k]) for k in ("gender", "expression", "age")})
        values.update(v)
        details["attributes"] = det
    if "celeba_score" in r:
        _celeba_metrics(r, info, values, details)
    if "embedding" in r and "t_embedding" in r:
        pairs, same, folds, note = evaluation_pairs(records, r["index"], pairs_file, pairs_root,
                                                    max_negatives, seed)
        details["pairs"] = note
        # the hard positives: one person in two different photos or videos
        cross = same & np.array([getattr(records[a], "source", None)
                                 != getattr(records[b], "source", None) for a, b in pairs], bool)
        _embedding_metrics(r, prior, pairs, same, folds, values, details, cross)
    return values, details


def _celeba_metrics(r: dict, info: dict, values: dict, details: dict) -> None:
    names = info.get("celeba_names") or [str(i) for i in range(r["celeba_score"].shape[1])]
    scores, truth, mask = r["celeba_score"], r["celeba"] > 0.5, r["celeba_mask"] > 0
    cols = [k for k in range(len(names)) if mask[:, k].any()]
    per = {names[k]: M.average_precision(scores[mask[:, k], k], truth[mask[:, k], k])
           for k in cols}
    ap = [v for v in per.values() if v is not None]
    if ap:
        values["celeba_mean_ap"] = 100.0 * float(np.mean(ap))
    acc = [((scores[mask[:, k], k] > 0.5) == truth[mask[:, k], k]).mean() for k in cols]
    values["celeba_mean_acc"] = 100.0 * float(np.mean(acc))
    prior = np.asarray((info.get("prior") or {}).get("celeba") or truth.mean(0))
    const = [((prior[k] > 0.5) == truth[mask[:, k], k]).mean() for k in cols]
    values["celeba_mean_acc_const"] = 100.0 * float(np.mean(const))
    details["celeba_ap"] = {n: (None if v is None else round(100 * v, 2)) for n, v in per.items()}


def _embedding_metrics(r: dict, prior: dict, pairs, same, folds, values: dict,
                       details: dict, cross: np.ndarray | None = None) -> None:
    """Cosine to the teacher, verification on ``pairs``, and on ``cross`` (positive pairs
    from two different sources) against every negative pair."""
    s_t = r.get("embedding_teacher", r["embedding"])
    t = r["t_embedding"]
    values["cosine"] = 100.0 * float((s_t * t).sum(1).mean())
    if prior.get("embedding") is not None:
        c = np.asarray(prior["embedding"], np.float32)
        values["cosine_const"] = 100.0 * float((t @ c).mean())
    if len(pairs) == 0:
        return
    pos = {int(j): k for k, j in enumerate(r["index"])}
    a = np.array([pos[i] for i in pairs[:, 0]])
    b = np.array([pos[i] for i in pairs[:, 1]])
    for who, emb in (("", r["embedding"]), ("teacher_", t)):
        dist = np.linalg.norm(emb[a] - emb[b], axis=1)
        v = M.verification_metrics(dist, same, folds)
        details[f"{who}verification"] = v
        for k in ("accuracy", "auc", "tar_far_1e-3", "tar_far_1e-4"):
            if v.get(k) is not None:
                values[f"{who}verif_{k}"] = float(v[k])
        if cross is not None and cross.any():
            keep = cross | ~same
            tar, _ = M.tar_at_far(dist[keep], same[keep], 1e-3)
            auc = M.verification_metrics(dist[keep], same[keep])["auc"]
            details[f"{who}verification_cross_source"] = {
                "positives": int(cross.sum()), "auc": auc,
                "tar_far_1e-3": None if tar is None else 100.0 * tar}
            values[f"{who}verif_cross_auc"] = float(auc)
    values["pairs"] = float(len(same))
    values["positive_pairs"] = float(same.sum())


def evaluation_pairs(records: list, indices, pairs_file: str | None = None,
                     pairs_root: str | None = None, max_negatives: int = 20_000, seed: int = 0):
    """``(pairs [P, 2] of record indices, same [P], folds [P] or None, note)`` among the
    evaluated faces: from an LFW ``pairs_file`` over ``pairs_root``, or from identities."""
    from mbv1.faces.pairs import pairs_from_records

    present = sorted(int(i) for i in indices)
    if pairs_file:
        return _lfw_pairs(records, present, pairs_file, pairs_root)
    pairs, same = pairs_from_records(records, present, max_negatives, seed)
    note = (f"{int(same.sum())} positive pairs (same video track or identity folder), "
            f"{int((~same).sum())} negative (same photo/frame, or different sources); "
            "pairs of one album/video in different frames are not used")
    return pairs, same, None, note


def _lfw_pairs(records: list, present: list[int], pairs_file: str, root: str | None):
    from mbv1.faces.pairs import lfw_image, read_lfw_pairs

    lfw = read_lfw_pairs(pairs_file)
    if root is None:
        raise MBV1Error("LFW pairs need the folder of the LFW images (data.val_path or data.path)")
    by_file: dict[str, int] = {}
    for i in present:  # the largest face of a file is its face (identity folders)
        rec = records[i]
        if rec.identity is not None:
            by_file[str(Path(rec.file).resolve())] = i
    pairs, same, folds, missing = [], [], [], 0
    for p in lfw:
        a = by_file.get(str(lfw_image(root, p.name1, p.n1).resolve()))
        b = by_file.get(str(lfw_image(root, p.name2, p.n2).resolve()))
        if a is None or b is None:
            missing += 1
            continue
        pairs.append((a, b))
        same.append(p.same)
        folds.append(p.fold)
    note = (f"LFW pairs {pairs_file}: {len(pairs)} of {len(lfw)} pairs evaluated"
            + (f" ({missing} without a detected face)" if missing else ""))
    return (np.array(pairs, np.int64).reshape(-1, 2), np.array(same, bool),
            np.array(folds, np.int64), note)


def describe_metrics(values: dict, details: dict, info: dict) -> list[str]:
    """Readable lines: student vs constant predictor vs teacher, and the paper's rows."""
    lines = []
    if "gender_acc" in values:
        lines.append("teacher agreement (student | constant predictor):")
        lines.append(f"  gender accuracy   {values['gender_acc']:6.2f}% | "
                     f"{values['gender_acc_const']:6.2f}%")
        if "gender_bal_acc" in values:
            lines.append(f"  gender balanced   {values['gender_bal_acc']:6.2f}% | "
                         f"{values['gender_bal_acc_const']:6.2f}%  (mean recall of the two "
                         "classes)")
        lines.append(f"  expression top-1  {values['expression_top1']:6.2f}% | "
                     f"{values['expression_top1_const']:6.2f}%")
        lines.append(f"  age MAE           {values['age_mae']:6.2f} y | "
                     f"{values['age_mae_const']:6.2f} y")
        if "mean_ap" in values:
            lines.append(f"  mean AP           {values['mean_ap']:6.2f}% | "
                         f"{values['mean_ap_const']:6.2f}%  (over attributes with both classes)")
        att = details.get("attributes") or {}
        ap, apc, pos = att.get("ap") or {}, att.get("ap_const") or {}, att.get("positives") or {}
        if ap:
            lines.append("  per attribute (AP student | constant, positives/faces):")
            for k, v in ap.items():
                lines.append(f"    {k:10s} " + ("n/a (one class only)" if v is None else
                                                f"{v:6.2f}% | {apc.get(k):6.2f}%")
                             + f"  {pos.get(k)}/{att.get('faces')}")
    if "celeba_mean_ap" in values:
        lines.append(f"CelebA: mean AP {values['celeba_mean_ap']:.2f}%, mean accuracy "
                     f"{values['celeba_mean_acc']:.2f}% (constant: "
                     f"{values['celeba_mean_acc_const']:.2f}%)")
    if "cosine" in values:
        lines.append(f"embedding cosine to the teacher: {values['cosine']:.2f}% (constant "
                     f"mean embedding: {values.get('cosine_const', float('nan')):.2f}%)")
    sv, tv = details.get("verification"), details.get("teacher_verification")
    if details.get("pairs"):
        lines.append(f"verification pairs: {details['pairs']}")
    if sv and tv:
        lines.append("verification (student | teacher):")
        def f(v):
            return "n/a (too few negative pairs)" if v is None else f"{v:6.2f}%"

        for k, label in (("accuracy", "10-fold accuracy"), ("auc", "ROC AUC"),
                         ("tar_far_1e-3", "TAR@FAR=1e-3"), ("tar_far_1e-4", "TAR@FAR=1e-4")):
            lines.append(f"  {label:17s} {f(sv.get(k))} | {f(tv.get(k))}")
        sc, tc = (details.get("verification_cross_source"),
                  details.get("teacher_verification_cross_source"))
        if sc and tc:
            lines.append(f"  one person in two different photos/videos ({sc['positives']} "
                         "positive pairs, against every negative pair):")
            lines.append(f"    ROC AUC          {f(sc['auc'])} | {f(tc['auc'])}")
            lines.append(f"    TAR@FAR=1e-3     {f(sc['tar_far_1e-3'])} | {f(tc['tar_far_1e-3'])}")
    crop = info.get("crop") or {}
    if crop:
        lines.append(f"crop policy: {crop.get('policy')} {crop.get('size')}px, margin "
                     f"{crop.get('margin')} (detector {crop.get('detector')}, landmarks "
                     f"{crop.get('landmarks')})")
    return lines
