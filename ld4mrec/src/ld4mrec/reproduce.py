"""``make reproduce-ld4mrec [DATA=dir]``: the embedded default (synthetic data) or a real dataset.

Without ``--data`` it writes a SYNTHETIC MMRec dataset into ``.cache/ld4mrec/synthetic`` once and
trains ``configs/smoke.yaml``; with ``--data DIR`` it trains ``configs/<DIR name>.yaml``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from common.errors import DataFormatError
from common.synthetic import mmrec as synthetic_mmrec
from ld4mrec.config import load_config
from ld4mrec.experiment import train_and_report

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SYNTHETIC_DIR = Path(".cache/ld4mrec/synthetic/smoke")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ld4mrec.reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="an MMRec dataset folder; its name picks configs/<name>.yaml")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        if args.data:
            name = Path(args.data).name
            config = load_config(CONFIGS / f"{name}.yaml", data=args.data, dataset=name)
        else:
            print("ld4mrec reproduce: SYNTHETIC embedded default (common.synthetic MMRec data), not the paper's data")
            if not (SYNTHETIC_DIR / "smoke.inter").is_file():
                synthetic_mmrec.write(SYNTHETIC_DIR, seed=0)
            config = load_config(CONFIGS / "smoke.yaml", data=str(SYNTHETIC_DIR))
        print(train_and_report(config)["table"])
    except DataFormatError as err:
        print(f"ld4mrec reproduce: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
