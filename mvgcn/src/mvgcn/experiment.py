"""One experiment = the lambda_C grid of a config, each value trained to early stop, selected on VALID.

MMRec's ``quick_start`` picks the grid winner by its test metric (enoche/MMRec#64); here the winner
is the value with the best valid metric, and its test numbers at its best valid epoch are reported.
"""

from __future__ import annotations

import json
import logging

import yaml

from common.data.mmrec import MMRecData
from common.run_folder import check_run_directory, run_directory
from mvgcn.config import MGCNConfig
from mvgcn.report import plot_curves, results_table
from mvgcn.train import Trainer, load_data

log = logging.getLogger(__name__)


def run_experiment(config: MGCNConfig, resume: bool = False, data: MMRecData | None = None,
                   max_epochs: int | None = None) -> dict:
    """Train every lambda_C of the grid (resuming finished or partial runs), select on valid, report."""
    root = run_directory(config, resume)
    check_run_directory(root, resume)
    data = data or load_data(config)
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    runs = []
    for cl_weight in config.grid():
        run_dir = root / f"cl_loss={cl_weight:g}"
        done = run_dir / "result.json"
        if resume and done.is_file():
            runs.append(json.loads(done.read_text()))
            continue
        log.info("training cl_loss=%g in %s", cl_weight, run_dir)
        progress = Trainer(config, data, cl_weight, run_dir, max_epochs=max_epochs).fit(resume=resume)
        result = {"cl_loss": cl_weight, "best_epoch": progress.best_epoch, "epochs_run": progress.epoch,
                  "finished": progress.stopped or progress.epoch >= config.epochs,
                  "valid": progress.best_valid, "test": progress.best_test}
        plot_curves(run_dir, config.valid_metric, config.synthetic)
        if result["finished"]:
            done.write_text(json.dumps(result, indent=1))
        runs.append(result)
    best = max(runs, key=lambda r: round(r["valid"].get(config.valid_metric, -1.0), 4))
    summary = {"synthetic": config.synthetic, "dataset": config.dataset, "valid_metric": config.valid_metric,
               "selected_cl_loss": best["cl_loss"], "runs": runs, "run_dir": str(root)}
    (root / "summary.json").write_text(json.dumps(summary, indent=1))
    (root / "results.md").write_text(results_table(summary, config.topk) + "\n")
    return summary
