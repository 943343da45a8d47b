"""BeFA's claim on SYNTHETIC features with planted information drift and omission: base vs + BeFA over seeds.

The paper's claim: content features from pre-trained encoders suffer *information drift* (preference-irrelevant
detail dominates the vector) and *information omission* (preference-relevant detail is missing), and the
behaviour-driven adapter repairs them. ``common.synthetic.mmrec.generate`` plants both (see its docstring);
this module trains every model of ``config.models`` without and with the adapter for every training seed of
``config.seeds`` on one fixed dataset (``config.data_seed``), and reports the test metrics at the best valid
epoch as mean ± sample standard deviation over the seeds, with the paired difference (same seed, BeFA − base).

Outputs next to the runs (``runs/befa/<dataset>/<name>/<model>[+befa]/seed<k>/``): ``claim.md``, ``claim.csv``
(mean and sd) and ``claim_seeds.csv`` (every seed's values).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from befa.config import BeFAConfig
from befa.experiment import COLUMNS, train_grid
from befa.train import load_data
from common.configs import load_config
from common.errors import DataFormatError
from common.labels import data_banner
from common.metrics.ranking import popularity_baseline
from common.run_folder import check_run_directory, run_directory
from common.synthetic import mmrec as synthetic_mmrec

REPORTED = ("recall@20", "ndcg@20")


@dataclass
class ClaimConfig(BeFAConfig):
    """A BeFA run configuration plus the training seeds and the planted dataset (``configs/drift.yaml``)."""

    seeds: list[int] = field(default_factory=lambda: [999, 1000, 1001])
    data_seed: int = 0
    drift_data: dict = field(default_factory=dict)  # keyword arguments of common.synthetic.mmrec.generate

    def validate(self, source: str | Path = "config") -> ClaimConfig:
        super().validate(source)
        if len(self.seeds) < 2 or len(set(self.seeds)) != len(self.seeds):
            raise DataFormatError(source, "seeds must list at least two distinct training seeds")
        known = set(inspect.signature(synthetic_mmrec.generate).parameters) - {"seed"}
        for key in self.drift_data:
            if key not in known:
                raise DataFormatError(source, f"drift_data: unknown option {key!r} (one of {', '.join(sorted(known))})")
        return self

    def run_config(self, **changes) -> BeFAConfig:
        """The plain ``BeFAConfig`` of one training (what its run folder's config.yaml records)."""
        base = {f.name: getattr(self, f.name) for f in dataclasses.fields(BeFAConfig)}
        return BeFAConfig(**{**base, **changes})


def load_claim_config(path: str | Path, **overrides) -> ClaimConfig:
    return load_config(ClaimConfig, path, **overrides)


def write_drift_data(config: ClaimConfig) -> ClaimConfig:
    """Write the planted dataset once into ``<data>/<hash of its options>`` (a scratch folder renamed when
    complete); the config pointing at it."""
    options = {"seed": config.data_seed, **config.drift_data}
    key = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:10]
    folder = Path(config.data) / key
    if not folder.is_dir():
        scratch = folder.with_name(f".{key}.partial{os.getpid()}")
        synthetic_mmrec.write(scratch, name=config.dataset, **options)
        (scratch / "synthetic.json").write_text(json.dumps(options, indent=1, sort_keys=True))
        os.replace(scratch, folder)
    return dataclasses.replace(config, data=str(folder))


def run_claim(config: ClaimConfig, resume: bool = False) -> dict:
    """Every model of ``config.models`` without and with BeFA for every seed; the claim tables."""
    root = run_directory(config, resume)
    check_run_directory(root, resume)
    data = load_data(config)
    runs = []
    for model in config.models:
        for adapter in (False, True):
            for seed in config.seeds:
                run = config.run_config(model=model, adapter=adapter, seed=seed)
                folder = root / f"{model}{'+befa' if adapter else ''}" / f"seed{seed}"
                result = train_grid(run, folder, resume, data)
                runs.append({"model": model, "variant": "BeFA" if adapter else "base", "seed": seed,
                             "best_epoch": result["best_epoch"], **{c: result["test"][c] for c in COLUMNS}})
    popularity = popularity_baseline(data.item_popularity(), data.eval_batches("test"), config.topk)
    rows = summarise(runs, config.models)
    write_claim(root, runs, rows, popularity, config)
    return {"run_dir": str(root), "runs": runs, "rows": rows, "popularity_test": popularity,
            "table": (root / "claim.md").read_text()}


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n − 1)."""
    return statistics.fmean(values), statistics.stdev(values)


def summarise(runs: list[dict], models: list[str]) -> list[dict]:
    """Per model: base, BeFA and the paired difference BeFA − base (same seeds), mean and sd of each column."""
    rows = []
    for model in models:
        by_variant = {v: sorted((r for r in runs if r["model"] == model and r["variant"] == v),
                                key=lambda r: r["seed"]) for v in ("base", "BeFA")}
        seeds = [r["seed"] for r in by_variant["base"]]
        if seeds != [r["seed"] for r in by_variant["BeFA"]]:
            raise ValueError(f"{model}: base and BeFA were not trained with the same seeds")
        series = {**by_variant, "BeFA - base": [
            {c: b[c] - a[c] for c in COLUMNS} for a, b in zip(by_variant["base"], by_variant["BeFA"])]}
        for variant, values in series.items():
            row = {"model": model, "variant": variant, "seeds": " ".join(map(str, seeds))}
            for c in COLUMNS:
                row[f"{c} mean"], row[f"{c} sd"] = mean_sd([v[c] for v in values])
            rows.append(row)
    return rows


def write_claim(root: Path, runs: list[dict], rows: list[dict], popularity: dict, config: ClaimConfig) -> None:
    for name, table in (("claim_seeds.csv", runs), ("claim.csv", rows)):
        pd.DataFrame(table).to_csv(root / name, index=False)
    planted = ", ".join(f"{k}={v}" for k, v in {"seed": config.data_seed, **config.drift_data}.items())
    lines = [f"BeFA on {config.dataset}: features with planted information drift and omission "
             f"(test, at the best valid epoch) — {data_banner(config.synthetic)}",
             f"planted data: {planted}; training seeds {', '.join(map(str, config.seeds))}; "
             "mean ± sd over the seeds (sd with n − 1); BeFA − base is paired by seed", "",
             "| model | variant | " + " | ".join(REPORTED) + " |", "|---|---|" + "---|" * len(REPORTED)]
    lines += [f"| {r['model']} | {r['variant']} | "
              + " | ".join(f"{r[f'{c} mean']:+.4f} ± {r[f'{c} sd']:.4f}" if r["variant"] == "BeFA - base"
                           else f"{r[f'{c} mean']:.4f} ± {r[f'{c} sd']:.4f}" for c in REPORTED) + " |" for r in rows]
    lines.append("| popularity | - | " + " | ".join(f"{popularity[c]:.4f}" for c in REPORTED) + " |")
    (root / "claim.md").write_text("\n".join(lines) + "\n")
