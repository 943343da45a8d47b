"""``galip train | sample | eval | fid-stats | bench``: the command line of the GALIP reproduction.

Multi-GPU: ``torchrun --nproc_per_node 8 -m galip.cli train --config configs/coco.yaml`` (batch_size is per process).
"""

from __future__ import annotations

import argparse
import json
import sys

from common.cli import (
    add_bench_arguments,
    add_device_argument,
    add_reproduce_command,
    add_run_arguments,
    cli_logging,
    command_parser,
    run_cli,
)
from common.dfgan_fid import add_fid_stats_command


def _label(config) -> str:
    from .train import _label as label

    return label(config)


def _precision(args) -> dict:
    """``--fp32`` overrides the config's ``mixed_precision`` (bf16 autocast on CPU, fp16 on CUDA) with false."""
    return {"mixed_precision": False} if args.fp32 else {}


def _train(args) -> None:
    from .config import load_config
    from .train import train

    config = load_config(args.config, data=args.data, run_name=args.run_name, epochs=args.epochs,
                         device=args.device, runs_dir=args.runs_dir, clip_weights=args.clip_weights,
                         batch_size=args.batch_size, **_precision(args))
    run_dir = train(config, resume=args.resume, init_from=args.init_from, check_data=not args.skip_data_check)
    print(f"run directory: {run_dir}")


def _sample(args) -> None:
    import torch

    from common.reports import save_grid

    from .sample import compile_generator, load_generator, sample_caption

    config, nets = load_generator(args.checkpoint, args.config, args.device, clip_weights=args.clip_weights,
                                  **_precision(args))
    if args.compile:
        compile_generator(nets.netG)
    images = sample_caption(nets.netG, nets.text_encoder, args.text, args.n, config.z_dim, torch.device(args.device),
                            seed=args.seed)
    out = save_grid(images, args.out, nrow=min(8, args.n))
    print(f"wrote {args.n} samples of {args.text!r} to {out}{_label(config)}")


def _eval(args) -> None:
    from pathlib import Path

    from common import distributed

    from .evaluate import evaluate
    from .report import write_report
    from .sample import compile_generator, load_generator

    where = distributed.setup(args.device)
    try:
        config, nets = load_generator(args.checkpoint, args.config, str(where.device), data=args.data,
                                      clip_weights=args.clip_weights, fid_weights=args.fid_weights,
                                      fid_stats=args.fid_stats, sample_times=args.sample_times,
                                      fid_samples=args.fid_samples, **_precision(args))
        if args.compile:
            compile_generator(nets.netG)
        results = evaluate(nets, config, where, seed=args.seed)
    finally:
        distributed.teardown()
    if where.is_main:
        label = _label(config)
        out = write_report(Path(args.out), results, label)
        print(json.dumps(results, indent=1))
        print(f"report: {out}{label}")


def _fid_stats(args) -> None:
    from common.dfgan_fid import real_statistics

    from .config import load_config

    config = load_config(args.config, data=args.data, fid_weights=args.fid_weights)
    print(f"wrote {real_statistics(config, args.out)}")


def _bench(args) -> None:
    from .bench import bench, report

    print(report(bench(device=args.device, batch_sizes=args.batch_sizes, n_batches=args.n_batches,
                       train_batch=args.train_batch, train_steps=args.train_steps, threads=args.threads,
                       compile_rows=args.compile)))


def _add_compile_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--compile", action="store_true",
                        help=f"torch.compile the generator{what} (one compilation per batch size, ~40 s on CPU; "
                             "images no longer bitwise the official code's)")


def _add_precision_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fp32", action="store_true",
                        help="float32 throughout (mixed_precision: false), whatever the config or checkpoint says")


def parser() -> argparse.ArgumentParser:
    p, sub = command_parser("galip", "GALIP (CVPR 2023) text-to-image reproduction.")

    t = sub.add_parser("train", help="train GALIP (single process, or under torchrun for DDP)")
    add_run_arguments(t, "configs/birds.yaml")
    t.add_argument("--clip-weights", help="local CLIP ViT-B/32 file (ViT-B-32.pt)")
    t.add_argument("--batch-size", type=int, help="batch size per process")
    t.add_argument("--init-from", help="an official state_epoch_*.pth: a new run continues its G, D, C, optimisers "
                                       "and epoch")
    _add_precision_argument(t)
    t.add_argument("--skip-data-check", action="store_true",
                   help="skip the check of every caption file and image header before training (COCO: minutes)")
    t.set_defaults(func=_train)

    e = sub.add_parser("eval", help="FID and CLIP score of a checkpoint on the test captions")
    e.add_argument("--checkpoint", required=True, help="a run's last.pt, or an official/released GALIP .pth")
    e.add_argument("--config", help="YAML config; required for official checkpoints")
    e.add_argument("--data", help="dataset folder (overrides the config)")
    e.add_argument("--clip-weights", help="local CLIP ViT-B/32 file")
    e.add_argument("--fid-weights", help="torchvision inception_v3_google-0cc3c7bd.pth")
    e.add_argument("--fid-stats", help="reference statistics npz (mu, sigma)")
    e.add_argument("--sample-times", type=int, help="passes over the test captions (birds 12, coco 1)")
    e.add_argument("--fid-samples", type=int, help="stop at this many samples (e.g. 30000); default: official count")
    e.add_argument("--out", default="galip_eval", help="report path without suffix (.json and .md are written)")
    e.add_argument("--seed", type=int, default=100)
    _add_precision_argument(e)
    _add_compile_argument(e, "")
    add_device_argument(e)
    e.set_defaults(func=_eval)

    b = sub.add_parser("bench", help="sampling images/s and training steps/s of the full-size birds model")
    add_bench_arguments(b, n_batches=5, train_steps=3, train_batch=0)
    _add_compile_argument(b, ": adds text -> images rows with it, timed after the eager ones")
    b.set_defaults(func=_bench)

    add_reproduce_command(sub, "galip", "a DF-GAN dataset folder; its name picks configs/<name>.yaml")

    s = sub.add_parser("sample", help="write an image grid for one caption")
    s.add_argument("--checkpoint", required=True, help="a run's last.pt, or an official/released GALIP .pth")
    s.add_argument("--text", required=True, help="the caption")
    s.add_argument("--n", type=int, default=8, help="number of images (default 8)")
    s.add_argument("--out", default="samples.png", help="output PNG (default samples.png)")
    s.add_argument("--config", help="YAML config; required for official checkpoints (they carry none)")
    s.add_argument("--clip-weights", help="local CLIP ViT-B/32 file (overrides the config)")
    s.add_argument("--seed", type=int, default=0)
    _add_precision_argument(s)
    _add_compile_argument(s, "")
    add_device_argument(s)
    s.set_defaults(func=_sample)

    add_fid_stats_command(sub, _fid_stats)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    cli_logging()
    return run_cli(f"galip {args.command}", lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
