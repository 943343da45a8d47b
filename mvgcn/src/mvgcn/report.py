"""Human-facing output: learning curves (PNG) and the results table."""

from __future__ import annotations

from pathlib import Path

from common.fit import plot_curves as common_plot_curves
from common.labels import data_banner

PAPER_COLUMNS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")  # MGCN Table 2


def plot_curves(run_dir: Path, valid_metric: str, synthetic: bool) -> Path:
    """``curves.png``: training loss parts and valid/test ``valid_metric`` per epoch, best epoch marked."""
    return common_plot_curves(run_dir, valid_metric, f"MGCN {run_dir.name} — {data_banner(synthetic)}")


def results_table(summary: dict, topk: list[int]) -> str:
    """Markdown: valid and test metrics at each run's best valid epoch; the selected run is starred."""
    cols = [c for c in PAPER_COLUMNS if int(c.split("@")[1]) in topk]
    head = f"MGCN on {summary['dataset']} — {data_banner(summary['synthetic'])}\n\n"
    head += "| cl_loss | best epoch | split | " + " | ".join(cols) + " |\n|" + "---|" * (len(cols) + 3) + "\n"
    rows = []
    for run in summary["runs"]:
        mark = " *" if run["cl_loss"] == summary["selected_cl_loss"] else ""
        for split in ("valid", "test"):
            vals = " | ".join(f"{run[split].get(c, float('nan')):.4f}" for c in cols)
            rows.append(f"| {run['cl_loss']:g}{mark} | {run['best_epoch']} | {split} | {vals} |")
    note = f"\n\n\\* selected on valid {summary['valid_metric']}; its test row is the reported result."
    return head + "\n".join(rows) + note
