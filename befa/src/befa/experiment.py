"""Base vs base + BeFA: every base model trained twice from one code path, test metrics at the best valid
epoch, written as ``comparison.csv``, ``comparison.png`` and ``comparison.md`` next to the runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from befa.config import BeFAConfig
from befa.train import load_data, trainer
from common.fit import plot_curves
from common.grid import merge_grid as common_merge_grid
from common.grid import run_grid, write_result
from common.labels import data_banner
from common.metrics.ranking import popularity_baseline
from common.run_folder import check_run_directory, run_directory

COLUMNS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")


def train_one(config: BeFAConfig, run_dir: Path, resume: bool = False, data=None) -> dict:
    """Train ``config.model`` (adapter as configured) to early stop; its best-valid result."""
    data = data or load_data(config)
    progress = trainer(config, data, run_dir).fit(resume=resume)
    name = f"{config.model}{' + BeFA' if config.adapter else ''}"
    plot_curves(run_dir, config.valid_metric, f"{name} — {data_banner(config.synthetic)}")
    result = {"model": config.model, "adapter": config.adapter, "best_epoch": progress.best_epoch,
              "valid": progress.best_valid, "test": progress.best_test}
    write_result(run_dir, result)
    return result


def grid_config(config: BeFAConfig) -> BeFAConfig:
    """``config`` without the adapter's own hyper-parameters in its grid when the adapter is off."""
    if config.adapter:
        return config
    return dataclasses.replace(config, grid={k: v for k, v in config.grid.items()
                                             if k not in ("layer_times", "dropout_rate")})


def train_grid(config: BeFAConfig, root: Path, resume: bool = False, data=None,
               shard: tuple[int, int] = (0, 1)) -> dict | None:
    """Every point of ``config.grid`` in its own run folder (``common.grid.run_grid``); the best by valid metric,
    or None for one shard of several."""
    config = grid_config(config)

    def train_point(point: dict, run_dir: Path, resume_point: bool) -> dict:
        return train_one(dataclasses.replace(config, **point, grid={}), run_dir, resume_point, data)

    return run_grid(config.grid, root, train_point, config.valid_metric, resume, shard)


def merge_grid(config: BeFAConfig, root: Path) -> dict:
    """Select over the results every shard of ``train_grid`` wrote; one line naming a point that is missing."""
    config = grid_config(config)
    return common_merge_grid(config.grid, root, config.valid_metric)


def compare(config: BeFAConfig, resume: bool = False) -> dict:
    """Every model of ``config.models`` without and with the adapter; the comparison table and plot."""
    root = run_directory(config, resume)
    check_run_directory(root, resume)
    data = load_data(config)
    results = []
    for model in config.models:
        for adapter in (False, True):
            run = dataclasses.replace(config, model=model, adapter=adapter)
            results.append(train_grid(run, root / f"{model}{'+befa' if adapter else ''}", resume, data))
    pop = popularity_baseline(data.item_popularity(), data.eval_batches("test"), config.topk)
    write_comparison(root, results, pop, config.synthetic, config.dataset)
    return {"run_dir": str(root), "results": results, "popularity_test": pop,
            "table": (root / "comparison.md").read_text()}


def write_comparison(root: Path, results: list[dict], popularity: dict, synthetic: bool, dataset: str) -> None:
    rows = [{"model": r["model"], "variant": "BeFA" if r["adapter"] else "base", "best_epoch": r["best_epoch"],
             **{c: r["test"][c] for c in COLUMNS}} for r in results]
    rows.append({"model": "popularity", "variant": "-", "best_epoch": "-", **{c: popularity[c] for c in COLUMNS}})
    pd.DataFrame(rows).to_csv(root / "comparison.csv", index=False)
    lines = [f"Base vs base + BeFA on {dataset} (test, at the best valid epoch) — {data_banner(synthetic)}", "",
             "| model | variant | best epoch | " + " | ".join(COLUMNS) + " |", "|" + "---|" * (len(COLUMNS) + 3)]
    lines += [f"| {r['model']} | {r['variant']} | {r['best_epoch']} | " + " | ".join(f"{r[c]:.4f}" for c in COLUMNS)
              + " |" for r in rows]
    (root / "comparison.md").write_text("\n".join(lines) + "\n")
    plot_comparison(root / "comparison.png", rows, synthetic, dataset)


def plot_comparison(path: Path, rows: list[dict], synthetic: bool, dataset: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [r["model"] for r in rows if r["variant"] == "base"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in zip(axes, ("recall@20", "ndcg@20")):
        for offset, variant in ((-0.2, "base"), (0.2, "BeFA")):
            values = [next(r[metric] for r in rows if r["model"] == m and r["variant"] == variant) for m in models]
            ax.bar([i + offset for i in range(len(models))], values, width=0.4, label=variant)
        pop = next(r[metric] for r in rows if r["model"] == "popularity")
        ax.axhline(pop, color="grey", linestyle=":", label="popularity")
        ax.set_xticks(range(len(models)), models)
        ax.set(title=f"test {metric}", ylabel=metric)
        ax.legend()
    fig.suptitle(f"BeFA on {dataset} — {data_banner(synthetic)}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
