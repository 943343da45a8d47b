"""Train one config (or its grid, selected on valid) to early stop, then write the results table, the one-step
vs k-step inference table, the curves and ``summary.json``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from common.checkpoints import read_checkpoint
from common.data.mmrec import MMRecData
from common.grid import merge_grid, point_dir, run_grid, write_result
from common.metrics.ranking import popularity_baseline
from common.reports import write_run_report
from common.run_folder import check_run_directory, run_directory
from ld4mrec.config import LD4MRecConfig
from ld4mrec.inference_report import compare_inference, inference_table
from ld4mrec.report import plot_curves, results_table
from ld4mrec.train import Trainer, load_data, restore_model


def train_one(config: LD4MRecConfig, run_dir: Path, data: MMRecData, resume: bool = False,
              max_epochs: int | None = None) -> dict:
    """Train to early stop; the best-valid result (also ``result.json``)."""
    progress = Trainer(config, data, run_dir, max_epochs=max_epochs).fit(resume=resume)
    plot_curves(run_dir, config.valid_metric, config.synthetic)
    result = {"best_epoch": progress.best_epoch, "epochs_run": progress.epoch, "valid": progress.best_valid,
              "test": progress.best_test}
    write_result(run_dir, result)
    return result


def train_grid(config: LD4MRecConfig, root: Path, data: MMRecData, resume: bool = False,
               shard: tuple[int, int] = (0, 1)) -> dict | None:
    """Every point of ``config.grid`` in ``root/<point>/`` (``common.grid``); the best on valid, or None for one
    shard of several."""
    def train_point(point: dict, run_dir: Path, resume_point: bool) -> dict:
        return train_one(dataclasses.replace(config, **point, grid={}), run_dir, data, resume_point)

    return run_grid(config.grid, root, train_point, config.valid_metric, resume, shard)


def report(config: LD4MRecConfig, data: MMRecData, root: Path, result: dict) -> dict:
    """``results.md`` (the selected run's valid and test beside popularity, then one-step vs k-step inference of
    its best model), ``inference.json`` and ``summary.json`` in ``root``."""
    point = result.get("point", {})
    chosen = dataclasses.replace(config, **point, grid={})
    pop = popularity_baseline(data.item_popularity(), data.eval_batches("valid"), config.topk)
    best = point_dir(root, point) / "checkpoints" / "best.pt"
    model = restore_model(chosen, data, read_checkpoint(best, "LD4MRec")["model"], best)
    inference = compare_inference(model, data, chosen)
    (root / "inference.json").write_text(json.dumps(inference, indent=1))
    table = results_table(config.dataset, config.synthetic, result["best_epoch"], result["valid"], result["test"],
                          pop)
    if point:
        table += f"\n\nselected on valid: {json.dumps(point)} (every point: grid.json)"
    table += "\n\n" + inference_table(inference, chosen)
    summary = {"synthetic": config.synthetic, "dataset": config.dataset, "point": point,
               "best_epoch": result["best_epoch"], "epochs_run": result["epochs_run"], "valid": result["valid"],
               "test": result["test"], "popularity_valid": pop, "run_dir": str(root)}
    return write_run_report(root, summary, table)


def train_and_report(config: LD4MRecConfig, resume: bool = False, max_epochs: int | None = None) -> dict:
    """One run, or with a ``grid`` every point and the one selected on valid; then ``report``."""
    root = run_directory(config, resume)
    check_run_directory(root, resume)
    data = load_data(config)
    if config.grid:
        result = train_grid(config, root, data, resume)
    else:
        result = train_one(config, root, data, resume, max_epochs)
    return report(config, data, root, result)


def merge_and_report(config: LD4MRecConfig, root: Path) -> dict:
    """After every shard of ``ld4mrec grid --shard i/N``: select over all points, then ``report``."""
    data = load_data(config)
    return report(config, data, root, merge_grid(config.grid, root, config.valid_metric))
