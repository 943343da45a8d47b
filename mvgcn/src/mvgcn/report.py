"""Human-facing output: learning curves (PNG), the results table, and the popularity baseline."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from common.data.mmrec import MMRecData  # noqa: E402
from common.metrics.ranking import evaluate_full_ranking  # noqa: E402

PAPER_COLUMNS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")  # MGCN Table 2


def synthetic_banner(synthetic: bool) -> str:
    return "SYNTHETIC data (common.synthetic), not the paper's datasets: numbers are not comparable to Table 2" \
        if synthetic else "real data"


def plot_curves(run_dir: Path, valid_metric: str, synthetic: bool) -> Path:
    """``curves.png``: training loss and valid/test ``valid_metric`` per epoch, best epoch marked."""
    lines = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    epochs = [ln["epoch"] for ln in lines]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 3.8))
    for part in lines[0]["loss"]:
        ax_loss.plot(epochs, [ln["loss"][part] for ln in lines], label=part)
    ax_loss.set(xlabel="epoch", ylabel="mean batch loss", yscale="log", title="training loss")
    ax_loss.legend()
    for split in ("valid", "test"):
        ax_metric.plot(epochs, [ln[split][valid_metric] for ln in lines], label=split)
    best = [ln["epoch"] for ln in lines if ln["best"]]
    if best:
        ax_metric.axvline(best[-1], color="grey", linestyle=":", label=f"best valid (epoch {best[-1]})")
    ax_metric.set(xlabel="epoch", ylabel=valid_metric, title=valid_metric)
    ax_metric.legend()
    fig.suptitle(f"MGCN {run_dir.name} — {synthetic_banner(synthetic)}", fontsize=9)
    fig.tight_layout()
    out = run_dir / "curves.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def results_table(summary: dict, topk: list[int]) -> str:
    """Markdown: valid and test metrics at each run's best valid epoch; the selected run is starred."""
    cols = [c for c in PAPER_COLUMNS if int(c.split("@")[1]) in topk]
    head = f"MGCN on {summary['dataset']} — {synthetic_banner(summary['synthetic'])}\n\n"
    head += "| cl_loss | best epoch | split | " + " | ".join(cols) + " |\n|" + "---|" * (len(cols) + 3) + "\n"
    rows = []
    for run in summary["runs"]:
        mark = " *" if run["cl_loss"] == summary["selected_cl_loss"] else ""
        for split in ("valid", "test"):
            vals = " | ".join(f"{run[split].get(c, float('nan')):.4f}" for c in cols)
            rows.append(f"| {run['cl_loss']:g}{mark} | {run['best_epoch']} | {split} | {vals} |")
    note = f"\n\n\\* selected on valid {summary['valid_metric']}; its test row is the reported result."
    return head + "\n".join(rows) + note


@torch.inference_mode()
def popularity_baseline(data: MMRecData, split: str, ks: list[int]) -> dict[str, float]:
    """Rank every item by its number of training interactions (same masking and metrics as MGCN)."""
    counts = torch.from_numpy(data.item_popularity())
    return evaluate_full_ranking(lambda u: counts.expand(len(u), -1).clone(), data.eval_batches(split), ks)
