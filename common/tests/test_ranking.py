"""Ranking metrics against a brute-force per-user reference and hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from common.metrics.ranking import RankingBatch, RankingEvaluator, evaluate_full_ranking, per_user_metrics


def brute_force(scores: np.ndarray, train: list[set], truth: list[set], ks) -> dict[str, float]:
    """Textbook per-user loop: mask train items, sort, then MMRec's definitions one user at a time."""
    sums: dict[str, float] = {}
    for u in range(scores.shape[0]):
        s = scores[u].copy()
        s[list(train[u])] = -np.inf
        ranked = list(np.argsort(-s, kind="stable"))
        t = truth[u]
        for k in ks:
            top = ranked[:k]
            hits = [1.0 if i in t else 0.0 for i in top]
            dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
            idcg = sum(1 / math.log2(r + 2) for r in range(min(len(t), k)))
            ap = sum(h * sum(hits[: r + 1]) / (r + 1) for r, h in enumerate(hits)) / min(len(t), k)
            for name, v in (("recall", sum(hits) / len(t)), ("precision", sum(hits) / k), ("ndcg", dcg / idcg),
                            ("map", ap)):
                sums[f"{name}@{k}"] = sums.get(f"{name}@{k}", 0.0) + v
    return {k: v / scores.shape[0] for k, v in sums.items()}


def random_problem(seed: int, n_users=70, n_items=120):
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((n_users, n_items))  # continuous: no ties
    train, truth = [], []
    for _ in range(n_users):
        items = rng.permutation(n_items)
        n_tr, n_te = rng.integers(0, 30), rng.integers(1, 70)  # |T_u| both below and above K
        train.append(set(items[:n_tr].tolist()))
        truth.append(set(items[n_tr : n_tr + n_te].tolist()))
    return scores, train, truth


def to_batch(users, train, truth):
    def coo(sets):
        pairs = [(r, i) for r, u in enumerate(users) for i in sorted(sets[u])]
        return torch.tensor([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs])

    return RankingBatch(torch.tensor(users), *coo(train), *coo(truth))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_full_ranking_matches_brute_force_mmrec_definitions(seed):
    scores, train, truth = random_problem(seed)
    ks = (5, 10, 20, 50)
    users = list(range(scores.shape[0]))
    batches = [to_batch(users[s : s + 16], train, truth) for s in range(0, len(users), 16)]  # several batches
    table = torch.from_numpy(scores)
    got = evaluate_full_ranking(lambda u: table[u].clone(), batches, ks)
    want = brute_force(scores, train, truth, ks)
    assert set(got) == set(want)
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-6), key


def test_hand_computed_single_user():
    # ranking after masking: items 3, 1, 4, 0 (item 2 is a training item); truth {1, 0}
    hits = torch.tensor([[False, True, False, True]])
    m = per_user_metrics(hits, torch.tensor([2]), ks=(2, 4))
    assert m["recall@2"].item() == pytest.approx(0.5)
    assert m["precision@2"].item() == pytest.approx(0.5)
    assert m["ndcg@2"].item() == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert m["map@2"].item() == pytest.approx((1 / 2) / 2)
    assert m["recall@4"].item() == pytest.approx(1.0)
    assert m["map@4"].item() == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert m["ndcg@4"].item() == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3)))


def test_ndcg_and_map_normalise_by_min_of_truth_size_and_k():
    # 5 truth items, K = 2, both hits: a perfect list must score 1, not 2/5
    m = per_user_metrics(torch.tensor([[True, True]]), torch.tensor([5]), ks=(2,))
    assert m["ndcg@2"].item() == pytest.approx(1.0)
    assert m["map@2"].item() == pytest.approx(1.0)
    assert m["recall@2"].item() == pytest.approx(2 / 5)


def test_training_items_are_masked_but_other_splits_are_not():
    scores = torch.tensor([[9.0, 8.0, 7.0, 1.0]])
    ev = RankingEvaluator(ks=(1,))
    # item 0 is a training item (masked); item 1 is the truth and must be ranked first
    ev.update(scores.clone(), torch.tensor([0]), torch.tensor([0]), torch.tensor([0]), torch.tensor([1]))
    assert ev.result()["recall@1"] == 1.0


def test_user_without_truth_items_is_rejected():
    with pytest.raises(ValueError, match="at least one truth item"):
        per_user_metrics(torch.tensor([[True]]), torch.tensor([0]), ks=(1,))


def test_k_larger_than_the_item_count_is_a_clear_error():
    with pytest.raises(ValueError, match="K = 50 exceeds the number of items"):
        RankingEvaluator(ks=(50,)).update(torch.zeros(2, 30), *(torch.zeros(0, dtype=torch.long),) * 4)
