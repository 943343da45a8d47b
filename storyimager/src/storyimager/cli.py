"""``storyimager`` command line: train, sample, eval, train-classifier, bench, make-tiny-backbone."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from common.cli import (
    add_device_argument,
    add_reproduce_command,
    add_run_arguments,
    cli_logging,
    command_parser,
    run_cli,
)

from .config import load_config

log = logging.getLogger("storyimager")


def _train(args) -> None:
    from .train import train

    config = load_config(args.config, data=args.data, epochs=args.epochs, device=args.device,
                         runs_dir=args.runs_dir, run_name=args.run_name, pretrained=args.pretrained)
    print(train(config, resume=args.resume, config_file=args.config, check_data=not args.skip_data_check))


def _sample(args) -> None:
    from .sample import given_frames, read_captions, storyboard
    from .sampling import sample_story
    from .train import load_trained

    model = load_trained(args.checkpoint, args.device)
    config = model.config
    captions = read_captions(args.captions, config.frames)
    mask, given = given_frames(args.frames, args.mode, config.frames, config.resolution, args.given)
    gen = torch.Generator().manual_seed(args.seed)
    frames = sample_story(model, [captions], mask[None], None if given is None else given[None],
                          steps=args.steps or config.sample_steps,
                          guidance=config.guidance if args.guidance is None else args.guidance, eta=config.eta,
                          generator=gen, progress=True)[0]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    storyboard(frames.cpu(), mask).save(out)
    note = " (RANDOM-weight backbone)" if config.random_weights else ""
    print(f"{args.mode}: storyboard written to {out}{note}")


def _eval(args) -> None:
    from .evaluate import evaluate, report_line
    from .train import load_trained

    model = load_trained(args.checkpoint, args.device, data=args.data, classifier=args.classifier,
                         fid_weights=args.fid_weights)
    results = evaluate(model, args.out or Path(args.checkpoint).parent / "eval", args.mode, args.stories)
    print(report_line(results))


def _train_classifier(args) -> None:
    from .classifier import evaluate_classifier, load_classifier, train_classifier

    config = load_config(args.config, data=args.data, device=args.device, classifier_epochs=args.epochs)
    out = Path(args.out or config.classifier or "classifier.pt")
    train_classifier(config, out)
    net, _ = load_classifier(out, config.device)
    print(f"classifier {out}: test {json.dumps(evaluate_classifier(net, config, 'test'))}{config.tag()}")


def _bench(args) -> None:
    from .bench import bench

    config = load_config(args.config, device=args.device, resolution=args.resolution, sample_steps=args.steps,
                         pretrained=args.pretrained)
    if args.paper_setting:
        from .paper_bench import paper_bench, report

        results = paper_bench(config, timed=args.timed_steps, threads=args.threads)
        print(report(config, results, args.threads or torch.get_num_threads()))
        return
    label = " [RANDOM weights: speed only]" if config.random_weights else ""
    print(f"storyimager bench: {config.frames} frames at {config.resolution} px, {config.sample_steps} DDIM steps, "
          f"guidance {config.guidance}, device {config.device}{label}")
    for variant, (seconds, peak) in bench(config, args.threads).items():
        print(f"  {variant:15s} {seconds:8.2f} s   peak memory +{peak:8.1f} MiB")


def _make_tiny(args) -> None:
    from .backbone import synthetic_words, write_tiny_backbone

    print(write_tiny_backbone(args.out, synthetic_words(), seed=args.seed), "(RANDOM weights)")


def parser() -> argparse.ArgumentParser:
    p, sub = command_parser("storyimager", "StoryImager: storyboard diffusion for story "
                                            "visualization, continuation and completion (arXiv 2404.05979)")

    t = sub.add_parser("train", help="fine-tune (torchrun --nproc_per_node N -m storyimager.cli train ... for DDP)")
    add_run_arguments(t, "configs/pororo.yaml")
    t.add_argument("--pretrained", help="diffusers SD 1.5 folder (overrides the config)")
    t.add_argument("--skip-data-check", action="store_true",
                   help="do not decode every frame and caption of the train and test splits before training")
    t.set_defaults(func=_train)

    e = sub.add_parser("eval", help="FID (64 px AR-LDM protocol and full size), Char-F1, Frm-Acc on the test split")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--mode", choices=("visualize", "continue"))
    e.add_argument("--data")
    e.add_argument("--classifier", help="train-classifier checkpoint")
    e.add_argument("--fid-weights", help="pytorch-fid Inception weights file")
    e.add_argument("--stories", type=int, help="score the first n test stories")
    e.add_argument("--out", help="output folder (default: <run>/eval)")
    add_device_argument(e)
    e.set_defaults(func=_eval)

    b = sub.add_parser("bench", help="storyboard vs frame-by-frame generation: time and peak memory")
    b.add_argument("--config", required=True)
    b.add_argument("--pretrained")
    b.add_argument("--resolution", type=int)
    b.add_argument("--steps", type=int, help="DDIM steps per sampling (default: the config's)")
    add_device_argument(b)
    b.add_argument("--paper-setting", action="store_true",
                   help="SD-1.5-sized random UNet/VAE/CLIP (no --pretrained read): StoryImager's storyboard vs "
                        "AR-LDM's frame by frame with a BLIP-large history encoder, seconds per story extrapolated "
                        "from --timed-steps")
    b.add_argument("--timed-steps", type=int, default=2,
                   help="--paper-setting: DDIM steps run per sampling, after one warm-up step (default 2)")
    b.add_argument("--threads", type=int, help="torch.set_num_threads in each bench process (default: torch's)")
    b.set_defaults(func=_bench)

    add_reproduce_command(sub, "storyimager", "dataset folder (the AR-LDM .h5 or the raw StoryDALL-E files); "
                                             "its name picks configs/<name>.yaml")

    s = sub.add_parser("sample", help="generate one story as a storyboard PNG")
    s.add_argument("--checkpoint", required=True, help="model.pt of a training run")
    s.add_argument("--mode", choices=("visualize", "continue", "complete"), default="visualize")
    s.add_argument("--captions", required=True, help="text file with one caption per frame")
    s.add_argument("--frames", help="folder with the given frames 1.png .. K.png (continue / complete)")
    s.add_argument("--given", type=int, nargs="+", help="1-based numbers of the given frames (complete)")
    s.add_argument("--out", default="story.png")
    s.add_argument("--steps", type=int, help="DDIM steps (default: the config's)")
    s.add_argument("--guidance", type=float, help="classifier-free guidance scale (default: the config's)")
    s.add_argument("--seed", type=int, default=0)
    add_device_argument(s)
    s.set_defaults(func=_sample)

    c = sub.add_parser("train-classifier", help="the Inception-v3 character classifier of Char-F1 / Frm-Acc")
    c.add_argument("--config", required=True)
    c.add_argument("--data")
    c.add_argument("--epochs", type=int)
    c.add_argument("--out", help="checkpoint path (default: the config's 'classifier')")
    add_device_argument(c, default=None)
    c.set_defaults(func=_train_classifier)

    m = sub.add_parser("make-tiny-backbone", help="write a RANDOM tiny SD-shaped diffusers folder (for trying)")
    m.add_argument("--out", required=True)
    m.add_argument("--seed", type=int, default=0)
    m.set_defaults(func=_make_tiny)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    cli_logging()
    return run_cli("storyimager", lambda: args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
