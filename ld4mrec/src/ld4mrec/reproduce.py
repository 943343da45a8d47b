"""``make reproduce-ld4mrec [DATA=dir]``: the embedded default (synthetic data) or a real dataset.

Without ``--data`` it writes a SYNTHETIC MMRec dataset into ``.cache/ld4mrec/synthetic`` once and
trains ``configs/smoke.yaml``; with ``--data DIR`` it trains ``configs/<DIR name>.yaml``.
"""

from __future__ import annotations

from pathlib import Path

from common.cli import reproduce_config
from common.synthetic import mmrec as synthetic_mmrec
from ld4mrec.config import load_config
from ld4mrec.experiment import train_and_report

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SYNTHETIC_DIR = Path(".cache/ld4mrec/synthetic/smoke")


def reproduce(data_dir: str | None) -> None:
    config = reproduce_config("ld4mrec reproduce", data_dir, CONFIGS, SYNTHETIC_DIR, load_config,
                              lambda out: synthetic_mmrec.write(out, seed=0, name="smoke"))
    print(train_and_report(config)["table"])
