"""``ld4mrec bench``: epoch time, one-step vs T-step inference over all users, peak memory (not a test).

SYNTHETIC data of Amazon Baby's size (19,445 users, 7,050 items, ~160k interactions, 4096/384-d
features); C-Net of the paper configs (hidden 1000, batch 400 users); diffusion with T = 50 steps so
that the classical reverse process can run 5 and 50 steps with the same network.
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common.synthetic import mmrec as synthetic_mmrec
from ld4mrec.config import load_config
from ld4mrec.train import Trainer, load_data


def _infer_all(model, users: np.ndarray, batch: int, reverse_steps: int) -> float:
    start = time.perf_counter()
    for chunk in torch.from_numpy(users).split(batch):
        model.predict(chunk, reverse_steps)
    return time.perf_counter() - start


def bench(n_users: int = 19_445, n_items: int = 7_050, steps=(5, 50), device: str = "cpu") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = synthetic_mmrec.write(Path(tmp) / "baby_sized", seed=0, n_users=n_users, n_items=n_items,
                                       mean_interactions=8.27, image_dim=4096, text_dim=384)
        config = load_config(None, data=str(folder), dataset="baby_sized", runs_dir=f"{tmp}/runs", synthetic=True,
                             steps=max(steps), device=device)
        data = load_data(config)
        trainer = Trainer(config, data, Path(tmp) / "run")
        start = time.perf_counter()
        trainer.train_epoch()
        epoch_s = time.perf_counter() - start
    model = trainer.model.eval()
    users = np.arange(data.n_users)
    one = min(_infer_all(model, users, config.eval_batch_size, 0) for _ in range(2))
    multi = {t: _infer_all(model, users, config.eval_batch_size, t) for t in steps}
    return {"users": data.n_users, "items": data.n_items, "epoch_s": epoch_s, "one_step_s": one, "reverse_s": multi,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "threads": torch.get_num_threads(), "device": device}


def report(r: dict) -> str:
    lines = [f"SYNTHETIC Baby-sized data: {r['users']} users x {r['items']} items, device {r['device']}, "
             f"{r['threads']} threads",
             f"training epoch (batches of 400 users): {r['epoch_s']:.1f} s",
             f"inference for all users, one step (forward-free): {r['one_step_s']:.2f} s"]
    for t, s in r["reverse_s"].items():
        lines.append(f"inference for all users, reverse_steps {t}: {s:.2f} s -> one step is {s / r['one_step_s']:.1f}x "
                     f"faster (goal >= {0.8 * t:.0f}x)")
    lines.append(f"peak resident memory: {r['peak_rss_mib']:.0f} MiB")
    return "\n".join(lines)
