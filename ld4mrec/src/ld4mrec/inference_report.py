"""The paper's headline side by side: one-step forward-free inference vs k classical reverse steps.

One trained model, every row on the same valid and test users: Recall/NDCG@10/20 and the time of the model's
scoring (``predict``, not the ranking) per 1,000 users. Rows are timed in interleaved rounds and each keeps
its fastest round, so that a slow moment of the machine does not land on one row only.
"""

from __future__ import annotations

import time

import torch

from common.labels import data_banner
from common.metrics.ranking import evaluate_full_ranking
from ld4mrec.config import LD4MRecConfig
from ld4mrec.report import COLUMNS

STEPS = (2, 5)  # besides one step and T


def reverse_steps_rows(steps: int, extra: tuple[int, ...] = STEPS) -> list[int]:
    """0 (one-step) then every k of ``extra`` below T, then T."""
    return [0, *sorted({k for k in extra if 0 < k < steps}), steps]


def _timed_rankings(model, data, config: LD4MRecConfig, k: int) -> tuple[dict, float, int]:
    """({valid, test} metrics, seconds spent in ``predict``, users scored) of inference with k reverse steps."""
    device = torch.device(config.device)
    seconds, users = 0.0, 0

    def score(u: torch.Tensor) -> torch.Tensor:
        nonlocal seconds, users
        start = time.perf_counter()
        scores = model.predict(u.to(device), k)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds += time.perf_counter() - start
        users += len(u)
        return scores

    metrics = {split: evaluate_full_ranking(score, data.eval_batches(split, config.eval_batch_size), config.topk)
               for split in ("valid", "test")}
    return metrics, seconds, users


def compare_inference(model, data, config: LD4MRecConfig, steps: list[int] | None = None, rounds: int = 3
                      ) -> list[dict]:
    """[{reverse_steps, valid, test, users, ms_per_1000_users}] for each k (0 = one-step) of ``steps``."""
    steps = reverse_steps_rows(config.steps) if steps is None else steps
    model.eval()
    best = {k: float("inf") for k in steps}
    rows = {}
    for _ in range(rounds):
        for k in steps:
            metrics, seconds, users = _timed_rankings(model, data, config, k)
            best[k] = min(best[k], seconds)
            rows[k] = {"reverse_steps": k, **metrics, "users": users}
    model.train()
    return [{**rows[k], "ms_per_1000_users": 1e6 * best[k] / rows[k]["users"]} for k in steps]


def inference_table(rows: list[dict], config: LD4MRecConfig) -> str:
    """Markdown: one row per inference, valid and test metrics, ms per 1,000 users and the cost vs one step."""
    one = next(r["ms_per_1000_users"] for r in rows if r["reverse_steps"] == 0)
    head = (f"One-step vs k-step inference, one trained model, {rows[0]['users']} user rankings per row "
            f"(valid + test), {config.device} — {data_banner(config.synthetic)}\n\n"
            "| inference | " + " | ".join(f"{split} {c}" for split in ("valid", "test") for c in COLUMNS)
            + " | ms / 1,000 users | x one step |\n")
    head += "|" + "---|" * (3 + 2 * len(COLUMNS)) + "\n"
    lines = []
    for r in rows:
        k = r["reverse_steps"]
        name = "one step (forward-free)" if k == 0 else f"{k} reverse steps" + (" (= T)" if k == config.steps else "")
        values = [r[split][c] for split in ("valid", "test") for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in values)
                     + f" | {r['ms_per_1000_users']:.1f} | {r['ms_per_1000_users'] / one:.1f} |")
    return head + "\n".join(lines)
