"""Base vs base + BeFA: every base model trained twice from one code path, test metrics at the best valid
epoch, written as ``comparison.csv``, ``comparison.png`` and ``comparison.md`` next to the runs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd

from befa.config import BeFAConfig
from befa.train import load_data, trainer
from common.errors import DataFormatError
from common.fit import plot_curves
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
    (run_dir / "result.json").write_text(json.dumps(result, indent=1))
    return result


def point_name(point: dict) -> str:
    """A grid point's run folder name, e.g. ``learning_rate=0.001,layer_times=2``."""
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in point.items())


def grid_config(config: BeFAConfig) -> BeFAConfig:
    """``config`` without the adapter's own hyper-parameters in its grid when the adapter is off."""
    if config.adapter:
        return config
    return dataclasses.replace(config, grid={k: v for k, v in config.grid.items()
                                             if k not in ("layer_times", "dropout_rate")})


def select(config: BeFAConfig, root: Path, results: list[dict]) -> dict:
    """The best result by VALID metric (rounded as MMRec); ``grid.json`` when there was a grid."""
    best = max(results, key=lambda r: round(r["valid"][config.valid_metric], 4))
    if len(results) > 1:
        (root / "grid.json").write_text(json.dumps({"selected": best["point"], "runs": results}, indent=1))
    return best


def train_grid(config: BeFAConfig, root: Path, resume: bool = False, data=None,
               shard: tuple[int, int] = (0, 1)) -> dict | None:
    """Every point of ``config.grid`` in its own run folder; the best by valid metric.

    ``shard=(i, n)`` trains only points i, i + n, i + 2n, ... (one process per GPU, a SLURM array or several
    machines over a shared folder) and returns None; ``merge_grid`` then selects over every shard's results. With
    ``resume`` a point that finished (``result.json``) is read back, an interrupted one continues from ``last.pt``.
    """
    config = grid_config(config)
    index, count = shard
    results = []
    for point in config.grid_points()[index::count]:
        run_dir = root / point_name(point) if point else root
        if resume and (run_dir / "result.json").is_file():
            result = json.loads((run_dir / "result.json").read_text())
        else:
            run = dataclasses.replace(config, **point, grid={})
            result = train_one(run, run_dir, resume and (run_dir / "checkpoints" / "last.pt").is_file(), data)
        results.append({**result, "point": point})
    return select(config, root, results) if count == 1 else None


def merge_grid(config: BeFAConfig, root: Path) -> dict:
    """Select over the results every shard of ``train_grid`` wrote; one line naming a point that is missing."""
    config = grid_config(config)
    results = []
    for point in config.grid_points():
        path = (root / point_name(point) if point else root) / "result.json"
        if not path.is_file():
            raise DataFormatError(path, "missing: this grid point has not finished (run its shard, --resume)")
        results.append({**json.loads(path.read_text()), "point": point})
    return select(config, root, results)


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
