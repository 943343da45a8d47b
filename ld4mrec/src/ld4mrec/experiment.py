"""Train one config to early stop, then write the results table, the curves and ``summary.json``."""

from __future__ import annotations

from common.metrics.ranking import popularity_baseline
from common.reports import write_run_report
from common.run_folder import check_run_directory, run_directory
from ld4mrec.config import LD4MRecConfig
from ld4mrec.report import plot_curves, results_table
from ld4mrec.train import Trainer, load_data


def train_and_report(config: LD4MRecConfig, resume: bool = False, max_epochs: int | None = None) -> dict:
    run_dir = run_directory(config, resume)
    check_run_directory(run_dir, resume)
    data = load_data(config)
    progress = Trainer(config, data, run_dir, max_epochs=max_epochs).fit(resume=resume)
    pop = popularity_baseline(data.item_popularity(), data.eval_batches("valid"), config.topk)
    table = results_table(config.dataset, config.synthetic, progress.best_epoch, progress.best_valid,
                          progress.best_test, pop)
    plot_curves(run_dir, config.valid_metric, config.synthetic)
    summary = {"synthetic": config.synthetic, "dataset": config.dataset, "best_epoch": progress.best_epoch,
               "epochs_run": progress.epoch, "valid": progress.best_valid, "test": progress.best_test,
               "popularity_valid": pop, "run_dir": str(run_dir)}
    return write_run_report(run_dir, summary, table)
