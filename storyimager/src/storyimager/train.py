"""``storyimager train``: LoRA fine-tuning of the storyboard model (single process, or ``torchrun`` DDP).

Every step draws its randomness (frame masks, caption dropout, VAE posterior noise, timesteps, diffusion noise)
from a generator seeded by (seed, rank, step), and every epoch's story order from (seed, epoch), so a run that
resumes from ``checkpoints/last.pt`` (written atomically every ``save_every`` steps and at each epoch end)
continues exactly as if it had not stopped. ``metrics.jsonl`` holds the mean loss per ``log_every`` steps;
``loss.png`` plots it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from common import distributed
from common.checkpoints import read_checkpoint
from common.configs import save_config
from common.errors import DataFormatError
from common.fit import finite_everywhere
from common.io import atomic_save, truncate_metrics
from common.rng import rng_state, set_rng_state, set_seed
from common.run_folder import check_run_directory, run_directory

from .backbone import load_backbone
from .config import StoryImagerConfig
from .data import collate, story_dataset
from .masking import sample_masks
from .model import StoryImager
from .preflight import check_stories, preflight

log = logging.getLogger("storyimager")


def build_model(config: StoryImagerConfig, device: torch.device | str = "cpu") -> StoryImager:
    """The model from the config's backbone folder (seeded, so new token rows start the same every time)."""
    set_seed(config.seed)
    backbone = load_backbone(config.pretrained)
    try:
        model = StoryImager(backbone, config)
    except ValueError as err:  # e.g. a resolution the VAE / UNet downsampling cannot tile
        raise DataFormatError(config.pretrained, str(err)) from None
    return model.to(device)


def load_trained(path: str | Path, device: str | None = None, **overrides) -> StoryImager:
    """A model from a checkpoint this trainer wrote (``model.pt`` or ``checkpoints/last.pt``)."""
    state = read_checkpoint(path, "StoryImager")
    config = StoryImagerConfig(**{**state["config"], **{k: v for k, v in overrides.items() if v is not None}})
    config.validate(path)
    model = build_model(config, device or config.device)
    try:
        model.load_trainable_state(state["model"])
    except KeyError as err:
        raise DataFormatError(path, f"does not fit the backbone in {config.pretrained} ({err})") from None
    return model.eval()


def lr_scale(step: int, total: int, warmup: int, schedule: str) -> float:
    """The learning-rate factor of 0-indexed ``step`` of ``total``. ``constant``: linear warmup to 1 over ``warmup``
    steps, then 1. ``cosine``: ARLDM's ``LinearWarmupCosineAnnealingLR`` stepped per batch (pl_bolts, start and end
    factor 0): step / (warmup - 1) during warmup, then 0.5 (1 + cos(pi (step - warmup) / (total - warmup)))."""
    if schedule == "constant":
        return min(1.0, (step + 1) / warmup) if warmup else 1.0
    if step < warmup:
        return step / max(1, warmup - 1)
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0]))


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def plot_loss(run_dir: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows])
    ax.set(xlabel="step", ylabel="masked diffusion loss", title=title)
    fig.tight_layout()
    out = run_dir / "loss.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _open_run(config: StoryImagerConfig, resume: bool) -> tuple[Path, Path, dict | None]:
    """The run folder, its ``last.pt`` and, when resuming, that checkpoint; a fresh run into a folder that holds
    one is refused."""
    run_dir = run_directory(config, resume)
    check_run_directory(run_dir, resume)
    last = run_dir / "checkpoints" / "last.pt"
    return run_dir, last, read_checkpoint(last, "StoryImager", ("model", "optimizer", "step", "log_window", "rng")) \
        if resume else None


def _steps_per_epoch(config: StoryImagerConfig, n_stories: int, world_size: int) -> int:
    per_epoch = n_stories // (config.batch_size * world_size)
    if per_epoch == 0:
        raise DataFormatError(config.data, f"{n_stories} training stories are fewer than one batch of "
                                           f"{config.batch_size} x {world_size} processes")
    return per_epoch


def train(config: StoryImagerConfig, resume: bool = False, config_file: str | Path | None = None,
          check_data: bool = True) -> Path:
    """Fine-tune; returns the run folder (``model.pt``, ``checkpoints/last.pt``, ``metrics.jsonl``, ``loss.png``).
    Every file the run and its evaluation will read is checked first (``preflight``; ``config_file`` is named in
    its message), then, unless ``check_data`` is False, every story of the train and test splits is decoded
    (``check_stories``)."""
    preflight(config, config_file)
    if check_data:
        check_stories(config)
    dist = distributed.setup(config.device)
    run_dir, last, state = _open_run(config, resume)
    model = build_model(config, dist.device)
    if not resume and dist.is_main:
        save_config(config, run_dir / "config.yaml")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    step, epoch, done_in_epoch = 0, 0, 0
    if state is not None:
        model.load_trainable_state(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, epoch, done_in_epoch = state["step"], state["epoch"], state["done_in_epoch"]
        set_rng_state(state["rng"])
        if dist.is_main:  # drop what was logged after the checkpoint, and a line torn by the kill
            truncate_metrics(run_dir / "metrics.jsonl", step + 1, key="step")
        log.info("resumed %s at step %d (epoch %d, batch %d)", last, step, epoch, done_in_epoch)
    net = model
    if dist.world_size > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dist.device] if dist.device.type == "cuda"
                                                        else None)
    data = story_dataset(config, "train")
    per_epoch = _steps_per_epoch(config, len(data), dist.world_size)
    label = config.tag()
    log.info("training %s: %d stories, %d steps per epoch, %d trainable / %d parameters%s", config.dataset,
             len(data), per_epoch, sum(p.numel() for p in params), sum(p.numel() for p in model.parameters()), label)
    probs = tuple(config.mask_probs)
    warmup = config.warmup_steps + config.warmup_epochs * per_epoch
    skipped = 0
    losses: list[float] = [] if state is None else state["log_window"]  # the losses of the record in progress

    def checkpoint() -> None:
        if dist.is_main:
            atomic_save({"model": model.trainable_state(), "optimizer": optimizer.state_dict(), "step": step,
                         "epoch": epoch, "done_in_epoch": done_in_epoch, "log_window": losses, "rng": rng_state(),
                         "config": dataclasses.asdict(config)}, last)

    model.train()
    while epoch < config.epochs:
        data.set_epoch(epoch)
        order = epoch_order(len(data), config.seed, epoch)[dist.rank::dist.world_size]
        order = order[: per_epoch * config.batch_size][done_in_epoch * config.batch_size:]
        loader = DataLoader(data, batch_size=config.batch_size, sampler=order.tolist(), collate_fn=collate,
                            num_workers=config.num_workers)
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", disable=not dist.is_main,
                   initial=done_in_epoch, total=per_epoch)
        for batch in bar:
            gen = step_generator(config.seed, dist.rank, step)
            masks = sample_masks(len(batch["captions"]), config.frames, probs, gen)
            scale = lr_scale(step, per_epoch * config.epochs, warmup, config.lr_schedule)
            for group in optimizer.param_groups:
                group["lr"] = config.lr * scale
            with torch.autocast(dist.device.type, torch.bfloat16,
                                enabled=config.mixed_precision and dist.device.type == "cuda"):
                loss = net(batch["images"].to(dist.device), batch["captions"], masks, gen)
            if finite_everywhere({"masked diffusion loss": loss}, epoch, done_in_epoch, config.skip_nonfinite):
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip:
                    torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
                optimizer.step()
                losses.append(loss.item())
            else:  # skip_nonfinite: no update, counted
                skipped += 1
                log.warning("step %d: non-finite loss, update skipped (%d so far)", step, skipped)
            step += 1
            done_in_epoch += 1
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if step % config.log_every == 0 and dist.is_main and losses:
                with (run_dir / "metrics.jsonl").open("a") as f:
                    f.write(json.dumps({"step": step, "epoch": epoch + 1, "loss": float(np.mean(losses))}) + "\n")
                losses.clear()
            if step % config.save_every == 0:
                checkpoint()
        epoch += 1
        done_in_epoch = 0
        checkpoint()
    if dist.is_main:
        atomic_save({"model": model.trainable_state(), "config": dataclasses.asdict(config), "step": step},
                    run_dir / "model.pt")
        if (run_dir / "metrics.jsonl").is_file():
            plot_loss(run_dir, f"StoryImager {config.dataset}{label}")
        log.info("trained %d steps; weights in %s", step, run_dir / "model.pt")
    distributed.teardown()
    return run_dir
