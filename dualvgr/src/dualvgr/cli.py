"""``dualvgr train | eval | bench | prepare-questions | extract-features | convert``: the DualVGR command line."""

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
    from dualvgr.config import load_config
    from dualvgr.train import train

    config = load_config(args.config, data=args.data, run_name=args.run_name, epochs=args.epochs,
                         device=args.device, runs_dir=args.runs_dir, unit_layers=args.unit_layers)
    result = train(config, resume=args.resume, init_from=args.init_from, check_data=not args.skip_data_check)
    if result:  # rank 0
        print(result["table"])


def _validate(args) -> None:
    from dualvgr.validate import validate

    result = validate(args.checkpoint, split=args.split, data=args.data, device=args.device, config_file=args.config)
    print(result["table"])
    print(json.dumps(result["accuracy"], indent=1))


def _bench(args) -> None:
    import torch

    from dualvgr.bench import bench, report
    from dualvgr.config import load_config

    config = load_config(args.config, device=args.device, unit_layers=args.unit_layers)
    if args.threads:
        torch.set_num_threads(args.threads)
    for lstm in args.lstm:
        print(report(bench(config, args.batch_size, args.steps, args.vocab, args.answers, args.question_len, lstm)))


def _prepare_questions(args) -> None:
    from dualvgr import questions

    for path in questions.run(args):
        print(path)


def _extract_features(args) -> None:
    from dualvgr import features

    for path in features.run(args):
        print(path)


def _convert(args) -> None:
    from dualvgr.convert import convert

    print(convert(args.official, args.out, args.config, data=args.data))


def parser() -> argparse.ArgumentParser:
    from dualvgr import features, questions

    p, sub = command_parser("dualvgr", "DualVGR (IEEE TMM 2021) VideoQA reproduction.")

    t = sub.add_parser("train", help="train; keep the best val checkpoint; report test at the best val epoch")
    add_run_arguments(t, "configs/msvd_qa.yaml")
    t.add_argument("--unit-layers", type=int, help="number of DualVGR units T (overrides the config)")
    t.add_argument("--init-from", help="a new run starts from this checkpoint's weights (official, converted, or a "
                                       "best.pt) with a fresh optimiser; not with --resume")
    t.add_argument("--skip-data-check", action="store_true",
                   help="skip reading every streamed feature row for NaN/inf before the run (for a data folder "
                        "already checked; a bad row then stops the run when a batch reads it)")
    t.set_defaults(func=_train)

    v = sub.add_parser("eval", help="accuracy of a checkpoint on one split, overall and per question type "
                                    "(the official validate.py)")
    v.add_argument("--checkpoint", required=True, help="checkpoints/best.pt of a run, or an official checkpoint")
    v.add_argument("--config", help="YAML config naming the dataset; required for an official checkpoint")
    v.add_argument("--split", default="test", choices=("train", "valid", "test"))
    v.add_argument("--data", help="dataset folder (default: the one the checkpoint was trained on)")
    add_device_argument(v)
    v.set_defaults(func=_validate)

    b = sub.add_parser("bench", help="training-step time and peak memory at a config's shapes (random inputs)")
    b.add_argument("--config", default="configs/msrvtt_qa.yaml", help="YAML config giving the shapes")
    b.add_argument("--batch-size", type=int, default=32)
    b.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    add_device_argument(b)
    b.add_argument("--unit-layers", type=int, help="overrides the config")
    b.add_argument("--vocab", type=int, default=8000, help="question vocabulary size")
    b.add_argument("--answers", type=int, default=4002, help="answer classes")
    b.add_argument("--question-len", type=int, default=20, help="padded question width")
    b.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    b.add_argument("--lstm", nargs="+", default=["nn"], choices=("nn", "fused"),
                   help="appearance BiLSTM kernel(s) to time (nn: nn.LSTM, oneDNN/cuDNN; fused: the hand-written one)")
    b.set_defaults(func=_bench)

    add_reproduce_command(sub, "dualvgr", "a prepared dataset folder; its name picks configs/<name>.yaml")

    q = sub.add_parser("prepare-questions", help="QA annotations -> vocabulary JSON and question pickles")
    questions.add_arguments(q)
    q.set_defaults(func=_prepare_questions)

    f = sub.add_parser("extract-features", help="videos -> ResNet-101 appearance and ResNeXt-101 motion HDF5s")
    features.add_arguments(f)
    f.set_defaults(func=_extract_features)

    c = sub.add_parser("convert", help="an official DualVGR checkpoint -> ours (strict key map; eval and "
                                       "train --init-from read it)")
    c.add_argument("--official", required=True, help="the official train.py's checkpoint, or a bare state dict")
    c.add_argument("--out", required=True, help="the checkpoint to write")
    c.add_argument("--config", required=True, help="YAML config naming the dataset, e.g. configs/msvd_qa.yaml")
    c.add_argument("--data", help="dataset folder whose vocabulary the model was trained with (overrides the config)")
    c.set_defaults(func=_convert)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    cli_logging()
    return run_cli(f"dualvgr {args.command}", lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
