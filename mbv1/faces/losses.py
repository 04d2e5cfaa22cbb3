"""The paper's distillation losses for the face students (Tables 12 and 14)."""

from __future__ import annotations

import torch


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``logits [N, K]`` to teacher probabilities ``[N, K]`` (the paper's
    emulation loss), averaged over the batch."""
    return -(target_probs * logits.log_softmax(1)).sum(1).mean()


def embedding_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Squared L2 distance between unit embeddings ``[N, D]``, averaged over the batch (the
    paper's loss for Table 14)."""
    return (student - teacher).pow(2).sum(1).mean()
