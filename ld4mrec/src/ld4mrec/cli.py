"""``ld4mrec train | eval | bench | reproduce | grid | ablate``: the command line of the LD4MRec reproduction."""

from __future__ import annotations

import argparse
import json
import sys

from common.cli import (
    add_device_argument,
    add_grid_arguments,
    add_reproduce_command,
    add_run_arguments,
    cli_logging,
    command_parser,
    run_cli,
)


def _config(args):
    from ld4mrec.config import load_config

    return load_config(args.config, data=args.data, run_name=args.run_name, epochs=args.epochs,
                       device=args.device, runs_dir=args.runs_dir)


def _train(args) -> None:
    from ld4mrec.experiment import train_and_report

    print(train_and_report(_config(args), resume=args.resume)["table"])


def _eval(args) -> None:
    from common.labels import data_banner
    from ld4mrec.evaluate import compare_checkpoint, evaluate_checkpoint

    if args.reverse_steps and len(args.reverse_steps) > 1:
        print(compare_checkpoint(args.checkpoint, data=args.data, steps=args.reverse_steps))
        return
    steps = args.reverse_steps[0] if args.reverse_steps else None
    result = evaluate_checkpoint(args.checkpoint, data=args.data, reverse_steps=steps)
    if result["synthetic"]:
        print(data_banner(True))
    print(json.dumps(result, indent=1))


def _grid(args) -> None:
    from common.errors import DataFormatError
    from common.run_folder import run_directory
    from ld4mrec.experiment import merge_and_report, train_grid
    from ld4mrec.train import load_data

    config = _config(args)
    if not config.run_name or not config.grid:
        raise DataFormatError(args.config, "ld4mrec grid needs a 'grid' in the config and --run-name "
                                           "(every shard and the merge share the run folder)")
    root = run_directory(config, args.resume)
    if args.merge:
        print(merge_and_report(config, root)["table"])
        return
    index, count = args.shard
    train_grid(config, root, load_data(config), args.resume, shard=(index, count))
    print(f"shard {index}/{count} done under {root}; select with: ld4mrec grid ... --merge")


def _ablate(args) -> None:
    from ld4mrec.ablation import run_ablation

    result = run_ablation(_config(args), tuple(args.seeds or ()), resume=args.resume)
    print(result["table"])
    print(f"\nrun directory: {result['run_dir']}")


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
    e.add_argument("--reverse-steps", type=int, nargs="+",
                   help="0 = one-step forward-free inference; k = k classical reverse steps (default: config); "
                        "several values: the side-by-side table of ranking quality and time per 1,000 users")
    e.set_defaults(func=_eval)

    b = sub.add_parser("bench", help="epoch time and one-step vs multi-step inference, Baby-sized synthetic data")
    b.add_argument("--n-users", type=int, default=19_445)
    b.add_argument("--n-items", type=int, default=7_050)
    b.add_argument("--steps", type=int, nargs="+", default=[5, 50], help="reverse_steps values to time")
    add_device_argument(b)
    b.set_defaults(func=_bench)

    add_reproduce_command(sub, "ld4mrec", "an MMRec dataset folder; its name picks configs/<name>.yaml")

    g = sub.add_parser("grid", help="one shard of the config's grid (--shard i/N), or --merge: select on valid")
    add_run_arguments(g, "configs/baby.yaml")
    add_grid_arguments(g)
    g.set_defaults(func=_grid)

    a = sub.add_parser("ablate", help="the paper's ablations (each component off) over several seeds, mean ± sd")
    add_run_arguments(a, "configs/baby.yaml")
    a.add_argument("--seeds", type=int, nargs="+", help="seeds (default: ld4mrec.ablation.SEEDS, 999 1000 1001)")
    a.set_defaults(func=_ablate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    cli_logging()
    return run_cli(f"ld4mrec {args.command}", lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
