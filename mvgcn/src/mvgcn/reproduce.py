"""``make reproduce-mvgcn [DATA=dir]``: the embedded default (synthetic data) or a real dataset.

Without ``--data`` it writes a SYNTHETIC MMRec dataset into ``.cache/mvgcn/synthetic`` once, trains
``configs/smoke.yaml`` over its lambda_C grid, and prints the table next to the popularity baseline.
With ``--data DIR`` it trains ``configs/<DIR name>.yaml`` (baby, sports, clothing) on that folder.
"""

from __future__ import annotations

from pathlib import Path

from common.cli import reproduce_config
from common.metrics.ranking import popularity_baseline
from common.synthetic import mmrec as synthetic_mmrec
from mvgcn.config import load_config
from mvgcn.experiment import run_experiment
from mvgcn.report import results_table
from mvgcn.train import load_data

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SYNTHETIC_DIR = Path(".cache/mvgcn/synthetic/smoke")


def reproduce(data_dir: str | None) -> None:
    config = reproduce_config("mvgcn reproduce", data_dir, CONFIGS, SYNTHETIC_DIR, load_config,
                              lambda out: synthetic_mmrec.write(out, seed=0, name="smoke"))
    data = load_data(config)
    summary = run_experiment(config, data=data)
    print(results_table(summary, config.topk))
    pop = popularity_baseline(data.item_popularity(), data.eval_batches("valid"), config.topk)
    best = next(r for r in summary["runs"] if r["cl_loss"] == summary["selected_cl_loss"])
    print(f"\npopularity baseline, valid {config.valid_metric}: {pop[config.valid_metric]:.4f}; "
          f"MGCN: {best['valid'][config.valid_metric]:.4f} "
          f"({best['valid'][config.valid_metric] / max(pop[config.valid_metric], 1e-12):.2f}x)")
    print(f"run directory: {summary['run_dir']}")
