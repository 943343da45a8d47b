"""``befa bench``: seconds per training epoch of every base model without and with BeFA (not a test).

SYNTHETIC data of Amazon Baby's size (19,445 users, 7,050 items, ~160k interactions, 4096-d image and
384-d text features), batch 2048, d = 64, t = 1; the adapter's overhead is (BeFA - base) / base.
"""

from __future__ import annotations

import dataclasses
import resource
import tempfile
import time
from pathlib import Path

import torch

from befa.config import BASE_MODELS, load_config
from befa.train import load_data, trainer
from common.synthetic import mmrec as synthetic_mmrec


def bench(n_users: int = 19_445, n_items: int = 7_050, models=BASE_MODELS, device: str = "cpu") -> dict:
    times: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = synthetic_mmrec.write(Path(tmp) / "baby_sized", seed=0, n_users=n_users, n_items=n_items,
                                       mean_interactions=8.27, image_dim=4096, text_dim=384)
        base = load_config(None, data=str(folder), dataset="baby_sized", cache_dir=f"{tmp}/graphs",
                           runs_dir=f"{tmp}/runs", synthetic=True, device=device)
        data = load_data(base)
        for model in models:
            for adapter in (False, True):
                t = trainer(dataclasses.replace(base, model=model, adapter=adapter), data, Path(tmp) / "run")
                t.train_epoch()  # warm-up: graph caches, first-touch allocations
                start = time.perf_counter()
                t.train_epoch()
                times.setdefault(model, {})["befa" if adapter else "base"] = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"users": data.n_users, "items": data.n_items, "times": times, "device": device,
            "threads": torch.get_num_threads(), "peak_rss_mib": peak}


def report(r: dict) -> str:
    lines = [f"SYNTHETIC Baby-sized data: {r['users']} users x {r['items']} items, device {r['device']}, "
             f"{r['threads']} threads; seconds per training epoch (after one warm-up epoch)",
             "| model | base | + BeFA | overhead |", "|---|---|---|---|"]
    for model, t in r["times"].items():
        lines.append(f"| {model} | {t['base']:.1f} | {t['befa']:.1f} | {100 * (t['befa'] / t['base'] - 1):+.1f}% |")
    lines.append(f"goal: overhead <= 15%; peak resident memory: {r['peak_rss_mib']:.0f} MiB")
    return "\n".join(lines)
