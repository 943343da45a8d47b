"""``mvgcn bench``: seconds per training epoch, per full evaluation, and peak memory (a benchmark, not a test).

Runs on a SYNTHETIC dataset of Amazon Baby's size (19,445 users, 7,050 items, ~160k interactions,
4096-d image and 384-d text features) with the official hyper-parameters (batch 2048, d = 64,
2 U-I layers, 1 item-item layer, k = 10).
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import torch

from common.synthetic import mmrec as synthetic_mmrec
from mvgcn.config import load_config
from mvgcn.graphs import knn_cosine_graph
from mvgcn.train import Trainer, evaluate, load_data


def bench(n_users: int = 19_445, n_items: int = 7_050, mean_interactions: float = 8.27, epochs: int = 2,
          device: str = "cpu") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = synthetic_mmrec.write(Path(tmp) / "baby_sized", seed=0, n_users=n_users, n_items=n_items,
                                       mean_interactions=mean_interactions, image_dim=4096, text_dim=384)
        config = load_config(None, data=str(folder), dataset="baby_sized", cache_dir=f"{tmp}/graphs",
                             runs_dir=f"{tmp}/runs", cl_loss=0.01, device=device, synthetic=True)
        data = load_data(config)
        start = time.perf_counter()
        knn_cosine_graph(torch.from_numpy(data.features["image_feat"]), config.knn_k)
        knn_s = time.perf_counter() - start
        trainer = Trainer(config, data, 0.01, Path(tmp) / "run")
        epoch_s, eval_s = [], []
        for _ in range(epochs):
            start = time.perf_counter()
            trainer.train_epoch()
            epoch_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            evaluate(trainer.model, data, "valid", config)
            eval_s.append(time.perf_counter() - start)
    return {"users": data.n_users, "items": data.n_items, "train_rows": int(data.train_users.size),
            "batches": len(trainer.sampler), "knn_graph_s": knn_s, "epoch_s": min(epoch_s), "eval_s": min(eval_s),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "threads": torch.get_num_threads(), "device": device, "epoch_s_all": epoch_s, "eval_s_all": eval_s}


def report(r: dict) -> str:
    return "\n".join([
        f"SYNTHETIC Baby-sized data: {r['users']} users x {r['items']} items, {r['train_rows']} training rows "
        f"({r['batches']} batches of 2048), device {r['device']}, {r['threads']} threads",
        f"image kNN graph (k=10, chunked cosine top-k): {r['knn_graph_s']:.2f} s",
        f"training epoch: {r['epoch_s']:.1f} s (fastest; each: {', '.join(f'{s:.2f}' for s in r['epoch_s_all'])})",
        f"full evaluation (valid, K=5/10/20/50): {r['eval_s']:.2f} s "
        f"(fastest; each: {', '.join(f'{s:.2f}' for s in r['eval_s_all'])})",
        f"peak resident memory: {r['peak_rss_mib']:.0f} MiB",
    ])
