"""Benchmark (not a test): full-ranking evaluation and BPR sampling on a Baby-sized SYNTHETIC problem.

``python -m common.bench`` writes a synthetic MMRec dataset of Amazon Baby's size (19,445 users,
7,050 items, ~160k interactions) to a temporary folder, scores every user against every item with
random 64-d embeddings, and times (a) MMRec full-ranking evaluation of the valid split (train items
masked, Recall/NDCG/Precision/MAP at 5/10/20/50) and (b) one epoch of BPR negative sampling.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from common.data.bpr import BPRSampler
from common.data.mmrec import load_mmrec
from common.metrics.ranking import evaluate_full_ranking
from common.synthetic import mmrec as synthetic_mmrec
from common.timing import peak_rss_mib


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m common.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--n-users", type=int, default=19_445)
    parser.add_argument("--n-items", type=int, default=7_050)
    parser.add_argument("--mean-interactions", type=float, default=8.27, help="per user (Baby: 160,792 / 19,445)")
    parser.add_argument("--batch-size", type=int, default=4096, help="users per evaluation batch")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = synthetic_mmrec.write(Path(tmp) / "baby_sized", seed=0, n_users=args.n_users, n_items=args.n_items,
                                       mean_interactions=args.mean_interactions, image_dim=4096, text_dim=384)
        start = time.perf_counter()
        data = load_mmrec(folder)
        load_s = time.perf_counter() - start
    n_inter = sum(m.nnz for m in data.splits.values())
    print(f"SYNTHETIC Baby-sized data: {data.n_users} users x {data.n_items} items, {n_inter} interactions, "
          f"torch threads {torch.get_num_threads()}")
    print(f"load_mmrec (.inter + 4096/384-d features): {load_s:.2f} s")

    users, items = torch.randn(data.n_users, 64), torch.randn(data.n_items, 64)
    n_eval = data.eval_users("valid").size

    def evaluate():
        return evaluate_full_ranking(lambda u: users[u] @ items.T, data.eval_batches("valid", args.batch_size))

    eval_s = best_of(evaluate, args.repeats)
    print(f"full-ranking evaluation, {n_eval} valid users, K=5/10/20/50, random embeddings: {eval_s:.3f} s "
          f"({n_eval / eval_s:,.0f} users/s; goal <= 1.5 s)")

    sampler = BPRSampler(data.train_users, data.train_items, data.n_items, batch_size=2048, seed=0)
    sample_s = best_of(lambda: list(sampler.epoch()), args.repeats)
    print(f"BPR sampling, one epoch of {data.train_users.size} rows in batches of 2048: {sample_s:.3f} s "
          f"({data.train_users.size / sample_s:,.0f} rows/s; goal <= 0.5 s)")
    print(f"peak resident memory: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
