"""The paper's ablations, each switching off one component, trained for several seeds: mean ± sd of the test
metrics at each run's best valid epoch.

Rows: the full model; without the collaborative condition; without the modality-preference condition; without
the soft behavioural target (plain x_0); and one-step training (the network trained only on what one-step
inference runs, no diffusion) instead of DiffRec's objective.
"""

from __future__ import annotations

import dataclasses
import json
import statistics

from common.data.mmrec import MMRecData
from common.grid import RESULT
from common.labels import data_banner
from common.run_folder import check_run_directory, run_directory
from ld4mrec.config import LD4MRecConfig
from ld4mrec.experiment import train_one
from ld4mrec.report import COLUMNS
from ld4mrec.train import load_data

VARIANTS = (  # (folder, row label, the config change that removes the component)
    ("full", "LD4MRec (full)", {}),
    ("no_collaborative", "w/o collaborative condition", {"use_collaborative": False}),
    ("no_modality", "w/o modality-preference condition", {"use_modality": False}),
    ("no_soft_target", "w/o soft target (hard x_0)", {"soft_target": "none"}),
    ("one_step_training", "one-step training (no diffusion)", {"objective": "one_step"}),
)
SEEDS = (999, 1000, 1001)


def run_ablation(config: LD4MRecConfig, seeds: tuple[int, ...] | None = None, resume: bool = False) -> dict:
    """Every variant for every seed (default ``SEEDS``) in ``runs_dir/<dataset>/<run>/<variant>/seed<seed>/``;
    the table."""
    seeds = seeds or SEEDS
    root = run_directory(config, resume)
    check_run_directory(root, resume)
    data: MMRecData = load_data(config)
    runs = []
    for folder, label, changes in VARIANTS:
        for seed in seeds:
            run_dir = root / folder / f"seed{seed}"
            if resume and (run_dir / RESULT).is_file():
                result = json.loads((run_dir / RESULT).read_text())
            else:
                run = dataclasses.replace(config, **changes, seed=seed, grid={})
                result = train_one(run, run_dir, data, resume and (run_dir / "checkpoints" / "last.pt").is_file())
            runs.append({"variant": label, "seed": seed, "best_epoch": result["best_epoch"],
                         **{c: result["test"][c] for c in COLUMNS}})
    table = ablation_table(runs, config, seeds)
    (root / "ablation.json").write_text(json.dumps(runs, indent=1))
    (root / "ablation.md").write_text(table + "\n")
    return {"run_dir": str(root), "runs": runs, "table": table}


def ablation_table(runs: list[dict], config: LD4MRecConfig, seeds: tuple[int, ...]) -> str:
    """Markdown: per variant, mean ± sample sd (n − 1) over the seeds of each test column."""
    head = (f"LD4MRec ablations on {config.dataset}, test at the best valid epoch, mean ± sd over seeds "
            f"{', '.join(map(str, seeds))} — {data_banner(config.synthetic)}\n\n"
            "| variant | " + " | ".join(f"test {c}" for c in COLUMNS) + " |\n" + "|" + "---|" * (1 + len(COLUMNS)))
    lines = []
    for _, label, _ in VARIANTS:
        rows = [r for r in runs if r["variant"] == label]
        cells = []
        for c in COLUMNS:
            values = [r[c] for r in rows]
            sd = statistics.stdev(values) if len(values) > 1 else float("nan")
            cells.append(f"{statistics.fmean(values):.4f} ± {sd:.4f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return head + "\n" + "\n".join(lines)
