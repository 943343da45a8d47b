"""Top-K ranking metrics with MMRec's definitions (``enoche/MMRec:src/utils/metrics.py``).

Full ranking: every item is scored for every evaluated user, the user's *training* items are masked
out (MMRec sets them to -1e10; we use -inf, which ranks the same), and the top ``max(ks)`` items are
taken with ``torch.topk``. For a user u with test set T_u (|T_u| >= 1) and hit indicator h_r at rank r:

- Recall@K    = sum_{r<=K} h_r / |T_u|
- Precision@K = sum_{r<=K} h_r / K
- NDCG@K      = sum_{r<=K} h_r / log2(r+1)  /  sum_{r<=min(|T_u|,K)} 1 / log2(r+1)   (binary gains)
- MAP@K       = sum_{r<=K} h_r * P@r  /  min(|T_u|, K)

Each metric is the mean over evaluated users. Everything here is vectorised over a batch of users.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import torch

METRICS = ("recall", "ndcg", "precision", "map")


class RankingBatch(NamedTuple):
    """A batch of evaluated users; ``*_rows`` index into ``users`` (0..B-1), ``*_cols`` are item ids."""

    users: torch.Tensor
    train_rows: torch.Tensor
    train_cols: torch.Tensor
    truth_rows: torch.Tensor
    truth_cols: torch.Tensor


def mask_and_topk(scores: torch.Tensor, mask_rows: torch.Tensor, mask_cols: torch.Tensor, k: int) -> torch.Tensor:
    """Indices [B, k] of the top-k items per row after setting (mask_rows, mask_cols) to -inf (in place)."""
    scores[mask_rows, mask_cols] = float("-inf")
    return torch.topk(scores, k, dim=1).indices


def hits_at(topk: torch.Tensor, truth_rows: torch.Tensor, truth_cols: torch.Tensor, n_items: int) -> torch.Tensor:
    """Boolean [B, k]: whether the item at each rank is one of the row's truth items."""
    rows = torch.arange(topk.shape[0], device=topk.device).unsqueeze(1)
    ranked_keys = (rows * n_items + topk).reshape(-1)
    truth_keys = truth_rows.to(topk.device) * n_items + truth_cols.to(topk.device)
    return torch.isin(ranked_keys, truth_keys).reshape(topk.shape)


def per_user_metrics(hits: torch.Tensor, n_truth: torch.Tensor, ks: Sequence[int]) -> dict[str, torch.Tensor]:
    """Per-user metric values (float64 [B]) for every ``<metric>@<k>``, from hits [B, max_k] and |T_u| [B]."""
    max_k = hits.shape[1]
    if max(ks) > max_k:
        raise ValueError(f"hits has {max_k} ranks but K={max(ks)} was asked for")
    if bool((n_truth < 1).any()):
        raise ValueError("every evaluated user needs at least one truth item")
    h = hits.to(torch.float64)
    n_truth = n_truth.to(device=h.device, dtype=torch.float64)
    ranks = torch.arange(1, max_k + 1, device=h.device, dtype=torch.float64)
    discount = 1.0 / torch.log2(ranks + 1.0)
    cum_hits = h.cumsum(1)
    dcg = (h * discount).cumsum(1)
    ideal_cum = discount.cumsum(0)
    ap_sum = (h * cum_hits / ranks).cumsum(1)
    out: dict[str, torch.Tensor] = {}
    for k in ks:
        ideal_len = torch.clamp(n_truth, max=k)  # min(|T_u|, K)
        out[f"recall@{k}"] = cum_hits[:, k - 1] / n_truth
        out[f"ndcg@{k}"] = dcg[:, k - 1] / ideal_cum[ideal_len.long() - 1]
        out[f"precision@{k}"] = cum_hits[:, k - 1] / k
        out[f"map@{k}"] = ap_sum[:, k - 1] / ideal_len
    return out


class RankingEvaluator:
    """Accumulates per-user metric sums over batches; ``result()`` gives MMRec's user means."""

    def __init__(self, ks: Sequence[int] = (5, 10, 20, 50)) -> None:
        self.ks = tuple(sorted(ks))
        self.sums: dict[str, float] = {}
        self.n_users = 0

    def update(
        self,
        scores: torch.Tensor,
        train_rows: torch.Tensor,
        train_cols: torch.Tensor,
        truth_rows: torch.Tensor,
        truth_cols: torch.Tensor,
    ) -> None:
        """Add a batch: ``scores`` [B, n_items] (modified in place by the mask)."""
        if self.ks[-1] > scores.shape[1]:
            raise ValueError(f"K = {self.ks[-1]} exceeds the number of items ({scores.shape[1]})")
        topk = mask_and_topk(scores, train_rows.to(scores.device), train_cols.to(scores.device), self.ks[-1])
        hits = hits_at(topk, truth_rows, truth_cols, scores.shape[1])
        n_truth = torch.bincount(truth_rows.to(scores.device), minlength=scores.shape[0])
        for name, values in per_user_metrics(hits, n_truth, self.ks).items():
            self.sums[name] = self.sums.get(name, 0.0) + float(values.sum())
        self.n_users += scores.shape[0]

    def result(self) -> dict[str, float]:
        if self.n_users == 0:
            raise ValueError("no user was evaluated")
        return {name: total / self.n_users for name, total in self.sums.items()}


@torch.inference_mode()
def evaluate_full_ranking(
    score_users: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[RankingBatch],
    ks: Sequence[int] = (5, 10, 20, 50),
) -> dict[str, float]:
    """MMRec full-ranking evaluation: ``score_users(user_ids) -> [B, n_items]`` over all batches."""
    evaluator = RankingEvaluator(ks)
    for batch in batches:
        scores = score_users(batch.users).float()
        evaluator.update(scores, batch.train_rows, batch.train_cols, batch.truth_rows, batch.truth_cols)
    return evaluator.result()


def popularity_baseline(item_counts, batches: Iterable[RankingBatch], ks: Sequence[int] = (5, 10, 20, 50)
                        ) -> dict[str, float]:
    """The popularity baseline: every user gets the items ranked by ``item_counts`` (training interactions)."""
    counts = torch.as_tensor(item_counts, dtype=torch.float32)
    return evaluate_full_ranking(lambda users: counts.expand(len(users), -1).clone(), batches, ks)
