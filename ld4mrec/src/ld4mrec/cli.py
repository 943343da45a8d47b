"""``ld4mrec train | eval | bench``: the command line of the LD4MRec reproduction."""

from __future__ import annotations

import argparse
import json
import sys

from common.cli import (
    add_device_argument,
    add_reproduce_command,
    add_run_arguments,
    cli_logging,
    command_parser,
    run_cli,
)


def _train(args) -> None:
    from ld4mrec.config import load_config
    from ld4mrec.experiment import train_and_report

    config = load_config(args.config, data=args.data, run_name=args.run_name, epochs=args.epochs,
                         device=args.device, runs_dir=args.runs_dir)
    print(train_and_report(config, resume=args.resume)["table"])


def _eval(args) -> None:
    from common.labels import data_banner
    from ld4mrec.evaluate import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, data=args.data, reverse_steps=args.reverse_steps)
    if result["synthetic"]:
        print(data_banner(True))
    print(json.dumps(result, indent=1))


def _bench(args) -> None:
    from ld4mrec.bench import bench, report

    print(report(bench(n_users=args.n_users, n_items=args.n_items, steps=tuple(args.steps), device=args.device)))


def parser() -> argparse.ArgumentParser:
    p, sub = command_parser("ld4mrec", "LD4MRec reproduction on MMRec-format data.")

    t = sub.add_parser("train", help="train to early stop on valid Recall@20, report test at the best epoch")
    add_run_arguments(t, "configs/baby.yaml")
    t.set_defaults(func=_train)

    e = sub.add_parser("eval", help="evaluate a checkpoint on valid and test")
    e.add_argument("--checkpoint", required=True, help="best.pt or last.pt of a run")
    e.add_argument("--data", help="dataset folder (default: the one the checkpoint was trained on)")
    e.add_argument("--reverse-steps", type=int, default=None,
                   help="0 = one-step forward-free inference; k = k classical reverse steps (default: config)")
    e.set_defaults(func=_eval)

    b = sub.add_parser("bench", help="epoch time and one-step vs multi-step inference, Baby-sized synthetic data")
    b.add_argument("--n-users", type=int, default=19_445)
    b.add_argument("--n-items", type=int, default=7_050)
    b.add_argument("--steps", type=int, nargs="+", default=[5, 50], help="reverse_steps values to time")
    add_device_argument(b)
    b.set_defaults(func=_bench)

    add_reproduce_command(sub, "ld4mrec", "an MMRec dataset folder; its name picks configs/<name>.yaml")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    cli_logging()
    return run_cli(f"ld4mrec {args.command}", lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
