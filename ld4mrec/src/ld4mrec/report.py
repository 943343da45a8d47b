"""Results table and learning curves of an LD4MRec run."""

from __future__ import annotations

from pathlib import Path

from common.fit import plot_curves as common_plot_curves
from common.labels import data_banner

COLUMNS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")  # the paper's table columns


def results_table(dataset: str, synthetic: bool, best_epoch: int, valid: dict, test: dict,
                  popularity: dict | None = None) -> str:
    """Markdown: valid and test at the best valid epoch (and the popularity baseline on valid)."""
    rows = [("LD4MRec", f"valid (epoch {best_epoch})", valid), ("LD4MRec", "test", test)]
    if popularity is not None:
        rows.append(("popularity", "valid", popularity))
    head = f"LD4MRec on {dataset} — {data_banner(synthetic)}\n\n| model | split | " + " | ".join(COLUMNS) + " |\n"
    head += "|" + "---|" * (len(COLUMNS) + 2) + "\n"
    return head + "\n".join(f"| {m} | {s} | " + " | ".join(f"{r.get(c, float('nan')):.4f}" for c in COLUMNS) + " |"
                            for m, s, r in rows)


def plot_curves(run_dir: Path, metric: str, synthetic: bool) -> Path:
    return common_plot_curves(run_dir, metric, f"LD4MRec {run_dir.name} — {data_banner(synthetic)}")
