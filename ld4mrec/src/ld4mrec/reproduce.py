"""``make reproduce-ld4mrec [DATA=dir]``: the embedded default (synthetic data) or a real dataset.

Without ``--data`` it writes a SYNTHETIC MMRec dataset into ``.cache/ld4mrec/synthetic`` once, trains
``configs/smoke.yaml`` (results, then one-step vs k-step inference of the trained model) and runs the ablations
over three seeds; with ``--data DIR`` it trains ``configs/<DIR name>.yaml`` (its grid, selected on valid) and
prints the same two tables (the ablations on real data: ``ld4mrec ablate``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from common.cli import reproduce_config
from common.synthetic import mmrec as synthetic_mmrec
from ld4mrec.ablation import run_ablation
from ld4mrec.config import load_config
from ld4mrec.experiment import train_and_report

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SYNTHETIC_DIR = Path(".cache/ld4mrec/synthetic/smoke")


def reproduce(data_dir: str | None) -> None:
    config = reproduce_config("ld4mrec reproduce", data_dir, CONFIGS, SYNTHETIC_DIR, load_config,
                              lambda out: synthetic_mmrec.write(out, seed=0, name="smoke"))
    result = train_and_report(config)
    print(result["table"])
    if not data_dir:
        print()
        print(run_ablation(dataclasses.replace(config, run_name=f"{Path(result['run_dir']).name}-ablation"))["table"])
