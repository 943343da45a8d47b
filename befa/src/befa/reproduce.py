"""``make reproduce-befa [DATA=dir]``: base vs base + BeFA for every base model.

Without ``--data``: SYNTHETIC MMRec data written once into ``.cache/befa/synthetic`` and
``configs/smoke.yaml``; with ``--data DIR``: ``configs/<DIR name>.yaml`` (tmall, microlens, hm, baby, ...).
"""

from __future__ import annotations

from pathlib import Path

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
