"""Evaluation of face students against the paper's protocols.

Attributes (Table 12): per-attribute average precision, unweighted mean over attributes (the
paper's "mean AP"). Without ground truth the labels are the teacher's: ``male`` (teacher
p_male > 0.5) and each expression one-vs-rest (the teacher's top-1), i.e. 8 binary attributes;
an attribute with no positive (or no negative) on the evaluation set has no AP and is left out
(listed). With CelebA, the 40 ground-truth attributes. Also teacher agreement: gender accuracy,
expression top-1 agreement, age MAE (years), each beside a constant predictor (the training
set's majority / mean; its AP is the positive rate), and gender balanced accuracy (the mean of
the two classes' recalls: a held-out set of mostly men cannot reward a constant "male").

Embeddings (Table 14): cosine to the teacher, and verification on pairs: accuracy by the
10-fold protocol of LFW (threshold chosen on 9 folds, applied to the 10th), TAR at
FAR = 1e-3 and 1e-4 (reported only when there are at least 1/FAR negative pairs), ROC AUC.
"""

from __future__ import annotations

import numpy as np

from mbv1.teachers.face_api_nets import EXPRESSIONS

__all__ = ["attribute_metrics", "average_precision", "balanced_accuracy", "mean_ap", "tar_at_far",
           "verification_metrics"]


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """AP of binary ``labels`` ranked by ``scores`` (sklearn's step-wise AP); None when the
    labels are all one class."""
    from sklearn.metrics import average_precision_score

    labels = np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        return None
    return float(average_precision_score(labels, np.asarray(scores, np.float64)))


def mean_ap(scores: np.ndarray, labels: np.ndarray, names: list[str]) -> tuple[float | None, dict]:
    """Unweighted mean of per-attribute APs over columns; ``(mean or None, {name: AP|None})``."""
    per = {n: average_precision(scores[:, k], labels[:, k]) for k, n in enumerate(names)}
    vals = [v for v in per.values() if v is not None]
    return (float(np.mean(vals)) if vals else None), per


def balanced_accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean per-class recall over the classes present in ``truth`` (a constant scores
    1/classes)."""
    classes = np.unique(truth)
    return float(np.mean([(pred[truth == c] == c).mean() for c in classes]))


def teacher_labels(gender: np.ndarray, expression: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Binary labels ``[N, 8]`` from teacher probabilities: male, then one-vs-rest per
    expression (teacher top-1)."""
    top = expression.argmax(1)
    cols = [gender[:, 0] > 0.5] + [top == k for k in range(len(EXPRESSIONS))]
    return np.stack(cols, 1), ["male", *EXPRESSIONS]


def attribute_metrics(student: dict[str, np.ndarray], teacher: dict[str, np.ndarray],
                      prior: dict[str, np.ndarray]) -> tuple[dict[str, float], dict]:
    """Student vs teacher on the face-api attributes.

    Args:
        student: ``gender [N, 2]`` and ``expression [N, 7]`` probabilities, ``age [N]``.
        teacher: the same, from the teacher.
        prior: the constant predictor, from the training targets: ``gender [2]``,
            ``expression [7]`` (mean probabilities), ``age`` (mean).

    Returns ``(values, details)``: values in percent (APs, accuracies) and years (MAE).
    """
    labels, names = teacher_labels(teacher["gender"], teacher["expression"])
    scores = np.concatenate([student["gender"][:, :1], student["expression"]], 1)
    m, per = mean_ap(scores, labels, names)
    const_m, const_per = mean_ap(np.zeros_like(scores, dtype=np.float64), labels, names)
    t_g, t_e = teacher["gender"].argmax(1), teacher["expression"].argmax(1)
    values = {
        "gender_acc": 100.0 * float((student["gender"].argmax(1) == t_g).mean()),
        "gender_acc_const": 100.0 * float((int(prior["gender"].argmax()) == t_g).mean()),
        # balanced accuracy: mean recall of the two classes; any constant scores 50%
        "gender_bal_acc": 100.0 * balanced_accuracy(student["gender"].argmax(1), t_g),
        "gender_bal_acc_const": 100.0 * balanced_accuracy(
            np.full_like(t_g, int(prior["gender"].argmax())), t_g),
        "expression_top1": 100.0 * float((student["expression"].argmax(1) == t_e).mean()),
        "expression_top1_const": 100.0 * float((int(prior["expression"].argmax()) == t_e).mean()),
        "age_mae": float(np.abs(student["age"] - teacher["age"]).mean()),
        "age_mae_const": float(np.abs(float(prior["age"]) - teacher["age"]).mean()),
    }
    if m is not None:
        values["mean_ap"] = 100.0 * m
        values["mean_ap_const"] = 100.0 * float(const_m)
    details = {"ap": {k: (None if v is None else round(100 * v, 2)) for k, v in per.items()},
               "ap_const": {k: (None if v is None else round(100 * v, 2))
                            for k, v in const_per.items()},
               "positives": {n: int(labels[:, k].sum()) for k, n in enumerate(names)},
               "faces": len(labels)}
    return values, details


def tar_at_far(dist: np.ndarray, same: np.ndarray, far: float) -> tuple[float | None, float | None]:
    """``(TAR, threshold)`` at false-accept rate ``far``: the largest distance threshold that
    accepts at most ``far`` of the negative pairs; None when there are fewer than ``1/far``
    negatives (the rate cannot be measured)."""
    neg = np.sort(dist[~same])
    if len(neg) < round(1 / far) or not same.any():
        return None, None
    k = int(np.floor(far * len(neg)))  # negatives allowed below the threshold
    thr = neg[k] if k < len(neg) else np.inf  # accept dist < thr: exactly k negatives pass
    return float((dist[same] < thr).mean()), float(thr)


def _best_threshold(dist: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """The accuracy-maximising threshold (accept ``dist < t``), taken midway between
    consecutive distinct distances; the middle one of a run of equally good candidates."""
    u = np.unique(dist)
    if len(u) == 0:
        return 0.0, 0.0
    cand = np.concatenate([[u[0] - 1e-6], (u[:-1] + u[1:]) / 2, [u[-1] + 1e-6]])
    order = np.argsort(dist)
    d, s = dist[order], same[order]
    # accepted = dist < t: positives accepted and negatives rejected, for every candidate at once
    below = np.searchsorted(d, cand, side="left")
    pos_below = np.concatenate([[0], np.cumsum(s)])[below]
    neg_below = np.concatenate([[0], np.cumsum(~s)])[below]
    acc = (pos_below + ((~s).sum() - neg_below)) / len(d)
    best = np.flatnonzero(acc == acc.max())
    i = int(best[len(best) // 2])
    return float(cand[i]), float(acc[i])


def roc_points(dist: np.ndarray, same: np.ndarray, max_points: int = 200) -> dict[str, list]:
    """The ROC curve of accepting ``dist < t``: ``{"far": [...], "tar": [...], "threshold":
    [...]}`` (rates in percent, FAR ascending; at most ``max_points``, always both ends)."""
    from sklearn.metrics import roc_curve

    far, tar, thr = roc_curve(same, -np.asarray(dist, np.float64))
    keep = np.unique(np.linspace(0, len(far) - 1, min(len(far), max_points)).round().astype(int))
    finite = np.where(np.isfinite(thr[keep]), -thr[keep], np.inf)
    return {"far": np.round(100 * far[keep], 4).tolist(), "tar": np.round(100 * tar[keep], 4).tolist(),
            "threshold": [None if not np.isfinite(t) else round(float(t), 6) for t in finite]}


def verification_metrics(dist: np.ndarray, same: np.ndarray, folds: np.ndarray | None = None,
                         n_folds: int = 10, seed: int = 0) -> dict[str, float | None]:
    """Verification figures of pair distances ``dist`` (smaller = more alike) and truth
    ``same``.

    ``folds`` gives each pair's fold (LFW's ``pairs.txt``); otherwise pairs are dealt into
    ``n_folds`` stratified folds (seeded). Accuracy: for each fold, the threshold maximising
    accuracy on the others is applied to it; mean over folds (percent). Also TAR at FAR 1e-3 /
    1e-4 (percent, None when unmeasurable), ROC AUC, the ROC curve (:func:`roc_points`) and the
    threshold on all pairs.
    """
    from sklearn.metrics import roc_auc_score

    dist, same = np.asarray(dist, np.float64), np.asarray(same, bool)
    out: dict[str, float | None] = {"pairs": float(len(same)), "positives": float(same.sum())}
    if not same.any() or same.all():
        return {**out, "accuracy": None, "auc": None, "tar_far_1e-3": None, "tar_far_1e-4": None,
                "threshold": None}
    if folds is None:
        rng = np.random.default_rng(seed)
        folds = np.empty(len(same), np.int64)
        for cls in (True, False):
            idx = np.flatnonzero(same == cls)
            rng.shuffle(idx)
            folds[idx] = np.arange(len(idx)) % n_folds
    accs = []
    for f in np.unique(folds):
        test = folds == f
        if test.all():
            continue
        thr, _ = _best_threshold(dist[~test], same[~test])
        accs.append(((dist[test] < thr) == same[test]).mean())
    thr_all, _ = _best_threshold(dist, same)
    out["accuracy"] = 100.0 * float(np.mean(accs)) if accs else None
    out["auc"] = 100.0 * float(roc_auc_score(same, -dist))
    out["threshold"] = thr_all
    out["roc"] = roc_points(dist, same)
    for far, key in ((1e-3, "tar_far_1e-3"), (1e-4, "tar_far_1e-4")):
        tar, _ = tar_at_far(dist, same, far)
        out[key] = None if tar is None else 100.0 * tar
    return out
