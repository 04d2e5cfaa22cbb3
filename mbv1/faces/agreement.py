"""Whether a face student's exported or int8 outputs say what its fp32 model says about a face:
the accuracy gate of ``mbv1 export`` and of ``mbv1 faces --precision auto``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

AGE_YEARS = 1.0  # the age may move by up to a year
EMBEDDING_COSINE = 0.99
RULE = (f"same gender, expression and CelebA attributes, age within {AGE_YEARS:g} year, "
        f"embedding cosine >= {EMBEDDING_COSINE}")


def faces_agree(keys: Sequence[str], ref: Sequence, got: Sequence) -> np.ndarray:
    """``[N]`` bool: face ``i`` agrees when every head of ``keys`` does (raw head outputs, each
    ``[N, ...]``, in ``keys`` order): the same argmax of gender and expression, the same
    decision on each CelebA attribute, age within :data:`AGE_YEARS`, embedding cosine at least
    :data:`EMBEDDING_COSINE`."""
    n = len(np.asarray(ref[0]))
    ok = np.ones(n, bool)
    for key, r, g in zip(keys, ref, got):
        r = np.asarray(r, np.float64).reshape(n, -1)
        g = np.asarray(g, np.float64).reshape(n, -1)
        if key in ("gender", "expression"):
            ok &= r.argmax(1) == g.argmax(1)
        elif key == "celeba":
            ok &= ((r > 0) == (g > 0)).all(1)
        elif key == "age":
            ok &= np.abs(r - g).max(1) <= AGE_YEARS
        elif key == "embedding":
            cos = (r * g).sum(1) / (np.linalg.norm(r, axis=1) * np.linalg.norm(g, axis=1) + 1e-12)
            ok &= cos >= EMBEDDING_COSINE
    return ok
