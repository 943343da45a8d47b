"""Losses of MGCN (Eqs. 16, 18-19) with the official code's batch semantics."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """Eq. (18): -mean log sigmoid(e_u.e_i+ - e_u.e_j-)."""
    pos = (users * positives).sum(1)
    neg = (users * negatives).sum(1)
    return -F.logsigmoid(pos - neg).mean()


def embedding_regulariser(users, positives, negatives, batch_size: int) -> torch.Tensor:
    """0.5 (||e_u||^2 + ||e_i+||^2 + ||e_j-||^2) / batch_size on the batch's final embeddings.

    As the official code, the divisor is the configured batch size, also for a short last batch.
    """
    return 0.5 * (users.pow(2).sum() + positives.pow(2).sum() + negatives.pow(2).sum()) / batch_size


def info_nce(view1: torch.Tensor, view2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Eq. (16), in-batch: row i of view1 against all rows of view2 (cosine / tau), positive = row i.

    -mean_i log( exp(s_ii / tau) / sum_j exp(s_ij / tau) ). Cosines are bounded, |s / tau| <= 1 / tau,
    so the sum of exponentials cannot overflow and needs no max-shift.
    """
    a, b = F.normalize(view1, dim=1), F.normalize(view2, dim=1)
    logits = a @ b.T / temperature
    return (logits.exp().sum(dim=1).log() - logits.diagonal()).mean()
