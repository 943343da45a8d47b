"""CLI: ``python -m common.synthetic <format> --out DIR --seed N [format options]``."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

FORMATS = {
    "mmrec": "MMRec .inter + image/text features (recommendation)",
    "text_image": "DF-GAN/AttnGAN CUB layout of coloured shapes with captions",
    "story": "AR-LDM HDF5 five-frame stories with character labels",
    "videoqa": "HCRN-style VideoQA features, question pickles and vocabulary",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m common.synthetic",
        description="Write a small SYNTHETIC dataset in a real on-disk format (for tests and embedded defaults).",
    )
    sub = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    for name, help_text in FORMATS.items():
        module = importlib.import_module(f"common.synthetic.{name}")
        p = sub.add_parser(name, help=help_text, description=module.__doc__)
        p.add_argument("--out", type=Path, required=True, help="output directory (created)")
        p.add_argument("--seed", type=int, default=0, help="random seed (output is deterministic in it)")
        module.add_arguments(p)
    args = vars(parser.parse_args(argv))
    module = importlib.import_module(f"common.synthetic.{args.pop('format')}")
    out = module.write(**args)
    print(f"wrote SYNTHETIC {module.__name__.rsplit('.', 1)[-1]} data to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
