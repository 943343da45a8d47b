"""``denet train | train-damsm | edit | eval | fid-stats | bench``: the command line of the DE-Net reproduction.

Multi-GPU: ``torchrun --nproc_per_node 4 -m denet.cli train --config configs/coco.yaml`` (batch_size is per process).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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


def _train(args) -> None:
    from .config import load_config
    from .train import train

    config = load_config(args.config, data=args.data, run_name=args.run_name, epochs=args.epochs,
                         device=args.device, runs_dir=args.runs_dir, batch_size=args.batch_size,
                         text_encoder=args.text_encoder, image_encoder=args.image_encoder)
    print(f"run directory: {train(config, resume=args.resume, check_data=not args.skip_data_check)}")


def _train_damsm(args) -> None:
    from .config import load_config
    from .train_damsm import train_damsm

    config = load_config(args.config, data=args.data, device=args.device, inception_weights=args.inception_weights)
    text, image = train_damsm(config, args.out, epochs=args.epochs)
    print(f"wrote {text} and {image}{config.label()}")


def _edit(args) -> None:
    import torch

    from common.reports import save_grid

    from .sample import edit, encode_texts, load_editor, read_source

    config, nets = load_editor(args.checkpoint, args.config, args.device, text_encoder=args.text_encoder,
                               image_encoder=args.image_encoder, data=args.data)
    device = torch.device(args.device)
    source = read_source(args.image, config.imsize).to(device)
    _, sent, _ = encode_texts(nets.text_encoder, config, [args.text], device)
    edited = edit(nets.netG, sent, source).clamp(-1, 1)
    image = Path(args.image)
    out = Path(args.out) if args.out else image.with_name(f"{image.stem}_edited.png")
    save_grid(edited, out, nrow=1)
    print(f"wrote {out} ({args.text!r}){config.label()}")


def _eval(args) -> None:
    from common import distributed

    from .evaluate import evaluate
    from .report import write_report
    from .sample import load_editor

    where = distributed.setup(args.device)
    try:
        config, nets = load_editor(args.checkpoint, args.config, str(where.device), data=args.data,
                                   text_encoder=args.text_encoder, image_encoder=args.image_encoder,
                                   fid_weights=args.fid_weights, fid_stats=args.fid_stats,
                                   eval_samples=args.eval_samples)
        results = evaluate(nets, config, where, seed=args.seed)
    finally:
        distributed.teardown()
    if where.is_main:
        label = config.label()
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

    print(report(bench(device=args.device, batch_sizes=tuple(args.batch_sizes), n_batches=args.n_batches,
                       train_batch=args.train_batch, train_steps=args.train_steps, threads=args.threads)))


def _damsm_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text-encoder", help="DAMSM text_encoder*.pth (overrides the config)")
    p.add_argument("--image-encoder", help="DAMSM image_encoder*.pth (overrides the config)")


def parser() -> argparse.ArgumentParser:
    p, sub = command_parser("denet", "DE-Net (AAAI 2023) text-guided image editing reproduction.")

    t = sub.add_parser("train", help="train DE-Net (single process, or under torchrun for DDP)")
    add_run_arguments(t, "configs/coco.yaml")
    t.add_argument("--batch-size", type=int, help="batch size per process")
    _damsm_flags(t)
    t.add_argument("--skip-data-check", action="store_true",
                   help="skip the check of every caption file and image header before training (COCO: minutes)")
    t.set_defaults(func=_train)

    v = sub.add_parser("eval", help="MP (with diff, sim, mse) and FID of a checkpoint on the test split")
    v.add_argument("--checkpoint", required=True)
    v.add_argument("--config", help="YAML config; required for checkpoints without an embedded one")
    v.add_argument("--data", help="dataset folder (overrides the config)")
    _damsm_flags(v)
    v.add_argument("--fid-weights", help="torchvision inception_v3_google-0cc3c7bd.pth")
    v.add_argument("--fid-stats", help="reference statistics npz (mu, sigma)")
    v.add_argument("--eval-samples", type=int, help="edit only the first n test images")
    v.add_argument("--out", default="denet_eval", help="report path without suffix (.json and .md are written)")
    v.add_argument("--seed", type=int, default=100)
    add_device_argument(v)
    v.set_defaults(func=_eval)

    b = sub.add_parser("bench", help="edits/s and training step time of the paper-size model (random weights)")
    add_bench_arguments(b, n_batches=3, train_steps=2)
    b.set_defaults(func=_bench)

    add_reproduce_command(sub, "denet", "a DF-GAN dataset folder; its name picks configs/<name>.yaml")

    d = sub.add_parser("train-damsm", help="pre-train the DAMSM text and image encoders (AttnGAN) on a dataset")
    d.add_argument("--config", required=True, help="YAML config, e.g. configs/birds.yaml")
    d.add_argument("--data", help="dataset folder (overrides the config)")
    d.add_argument("--out", required=True, help="folder for text_encoder<epoch>.pth / image_encoder<epoch>.pth")
    d.add_argument("--epochs", type=int, help="epochs (default: damsm_epochs of the config)")
    d.add_argument("--inception-weights", help="torchvision inception_v3_google-0cc3c7bd.pth for the frozen trunk")
    add_device_argument(d, default=None)
    d.set_defaults(func=_train_damsm)

    e = sub.add_parser("edit", help="edit one image as a text says; writes <image>_edited.png next to it")
    e.add_argument("--checkpoint", required=True, help="a run's checkpoints/last.pt (or a state_epoch_*.pth)")
    e.add_argument("--image", required=True, help="source image (any size; resized and centre-cropped to imsize)")
    e.add_argument("--text", required=True, help="the target description")
    e.add_argument("--out", help="output PNG (default: <image>_edited.png beside the source)")
    e.add_argument("--config", help="YAML config; required for checkpoints without an embedded one")
    e.add_argument("--data", help="dataset folder whose captions_DAMSM.pickle gives the vocabulary")
    _damsm_flags(e)
    add_device_argument(e)
    e.set_defaults(func=_edit)

    add_fid_stats_command(sub, _fid_stats)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    cli_logging()
    return run_cli(f"denet {args.command}", lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
