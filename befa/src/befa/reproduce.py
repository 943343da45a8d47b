"""``make reproduce-befa [DATA=dir]``: base vs base + BeFA for every base model.

Without ``--data``: SYNTHETIC MMRec data written once into ``.cache/befa/synthetic`` and
``configs/smoke.yaml``, then BeFA's claim on SYNTHETIC features with planted information drift and
omission (``configs/drift.yaml``, ``befa.claim``: every model without and with BeFA over several training
seeds, mean ± sd); with ``--data DIR``: ``configs/<DIR name>.yaml`` (tmall, microlens, hm, baby, ...).
"""

from __future__ import annotations

import time
from pathlib import Path

from befa.claim import load_claim_config, run_claim, write_drift_data
from befa.config import load_config
from befa.experiment import compare
from common.cli import reproduce_config
from common.synthetic import mmrec as synthetic_mmrec

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SYNTHETIC_DIR = Path(".cache/befa/synthetic/smoke")


def reproduce(data_dir: str | None) -> None:
    config = reproduce_config("befa reproduce", data_dir, CONFIGS, SYNTHETIC_DIR, load_config,
                              lambda out: synthetic_mmrec.write(out, seed=0, name="smoke"))
    result = compare(config)
    print(result["table"])
    print(f"run directory: {result['run_dir']} (comparison.csv, comparison.png)")
    if data_dir:
        return
    start = time.perf_counter()
    claim = run_claim(write_drift_data(load_claim_config(CONFIGS / "drift.yaml")))
    print(claim["table"])
    print(f"run directory: {claim['run_dir']} (claim.csv: mean and sd, claim_seeds.csv: every seed; "
          f"{time.perf_counter() - start:.0f} s)")
