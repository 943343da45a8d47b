"""GALIP training (``tobran/GALIP:code/lib/modules.py:train``, ``src/train.py``; paper Sec. 3.4, spec 2.6).

Per batch: one discriminator step (hinge real / mismatched / fake terms and the MA-GP, Adam on NetD + NetC), then
one generator step on the *same* fake images and CLIP graph (adversarial term + ``sim_w`` * CLIP similarity, Adam on
all of NetG's parameters; the frozen CLIP ones get no gradient). AMP with one GradScaler per net (official
``growth_interval`` 2000 and the reset to 16384 below ``scaler_min``), ``torchrun`` + DDP, atomic checkpoints in the
official ``state_epoch`` layout plus scalers and RNG states, exact resume.

Difference from the official step, value-preserving: the real images' CLIP features are computed without a graph
and made the leaf of the MA-GP (the official code differentiates through CLIP to the pixels but only uses the
gradient w.r.t. the features and the sentence), which gives the same parameter gradients.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from common import distributed
from common.checkpoints import read_checkpoint
from common.data.text_image import check_images_and_captions
from common.distributed import Dist, epoch_loader
from common.errors import DataFormatError, NonFiniteLoss
from common.fit import finite_everywhere, log_skipped
from common.io import atomic_save
from common.labels import run_label
from common.rng import rng_state, set_rng_state
from common.run_folder import open_run, resume_or_record

from .config import GALIPConfig
from .data import dataset
from .losses import discriminator_loss, generator_loss
from .nets import build_nets, load_clip_model

log = logging.getLogger(__name__)
SCALE_RESET = 16384.0


class GANTrainer:
    """GALIP's trainer minus the step: Adam on G and on D + C, one GradScaler per net with the official
    floor (a scale below ``scaler_min`` is reset to 16384), DDP wrappers (``self.G/D/C``, what a step calls), and the
    official ``state_epoch`` checkpoint layout plus scalers, RNG states and the config."""

    kind = "galip"  # named in the error for a checkpoint of another kind

    def _setup(self, config, where: Dist, nets, amp: bool, growth_interval: int = 2000,
               scaler_min: float = 64.0) -> None:
        self.config, self.where, self.nets, self.scaler_min = config, where, nets, scaler_min
        betas = tuple(config.betas)
        self.opt_G = torch.optim.Adam(nets.netG.parameters(), lr=config.lr_g, betas=betas)  # noqa: N815
        self.opt_D = torch.optim.Adam([*nets.netD.parameters(), *nets.netC.parameters()],  # noqa: N815
                                      lr=config.lr_d, betas=betas)
        self.scaler_G, self.scaler_D = (torch.amp.GradScaler(where.device.type,  # noqa: N815
                                                             growth_interval=growth_interval, enabled=amp)
                                        for _ in range(2))
        self.G, self.D, self.C = nets.netG, nets.netD, nets.netC
        if where.world_size > 1:
            ids = [where.device.index] if where.device.type == "cuda" else None
            self.G, self.D, self.C = (DistributedDataParallel(m, device_ids=ids, find_unused_parameters=True,
                                                              broadcast_buffers=False)
                                      for m in (nets.netG, nets.netD, nets.netC))
        self.epoch, self.step_in_epoch, self.loss_sums, self.skipped_in_epoch = 0, 0, {}, 0
        self.position = (1, 0)  # (epoch, batch index in it) of the step running, named by a non-finite loss

    def finite(self, terms: dict[str, torch.Tensor], amp_scaled: tuple[str, ...] = ()) -> bool:
        """True when every loss term is finite on every process (one device sync; under DDP one all-reduce of the
        terms, so that all processes stop or skip together). Otherwise ``NonFiniteLoss`` naming the epoch, the batch
        and the first bad term, raised before the update (``last.pt`` keeps the last finite state), or False with
        ``skip_nonfinite``. Terms named in ``amp_scaled`` are computed from GradScaler-scaled gradients (the AMP
        MA-GP): with the scaler on, their overflow is the scaler's to handle (it skips the update and lowers the
        scale, as officially), so they are not checked."""
        if self.scaler_D.is_enabled():
            terms = {k: v for k, v in terms.items() if k not in amp_scaled}
        return finite_everywhere(terms, *self.position, skip=self.config.skip_nonfinite)

    def train_mode(self) -> None:
        for net in (self.nets.netG, self.nets.netD, self.nets.netC):
            net.train()

    def _scaled_step(self, loss: torch.Tensor, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if scaler.is_enabled() and scaler.get_scale() < self.scaler_min:
            scaler.update(SCALE_RESET)

    def state_dict(self) -> dict:
        """The official ``state_epoch`` layout (``model``, ``optimizers``, ``epoch``) plus scalers, RNG, config."""
        n = self.nets
        return {
            "model": {"netG": n.netG.state_dict(), "netD": n.netD.state_dict(), "netC": n.netC.state_dict()},
            "optimizers": {"optimizer_G": self.opt_G.state_dict(), "optimizer_D": self.opt_D.state_dict()},
            "scalers": {"scaler_G": self.scaler_G.state_dict(), "scaler_D": self.scaler_D.state_dict()},
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,  # > 0: saved inside epoch + 1, after that many batches
            "loss_sums": self.loss_sums,
            "skipped_in_epoch": self.skipped_in_epoch,  # steps of that epoch skipped for a non-finite loss
            "rng": rng_state(),
            "config": self.config.to_dict(),
        }

    def _load_models(self, models: dict, path: Path) -> None:
        raise NotImplementedError

    def _load_official_layout(self, state: dict, path: Path) -> None:
        """The official ``state_epoch`` part: ``model`` (G, D, C), ``optimizers`` (G, D), ``epoch``."""
        self._load_models(state["model"], path)
        self.opt_G.load_state_dict(state["optimizers"]["optimizer_G"])
        self.opt_D.load_state_dict(state["optimizers"]["optimizer_D"])
        self.epoch = int(state["epoch"])

    def load_state_dict(self, state: dict, path: Path) -> None:
        try:
            self._load_official_layout(state, path)
            scalers = state["scalers"]
            self.scaler_G.load_state_dict(scalers["scaler_G"])
            self.scaler_D.load_state_dict(scalers["scaler_D"])
            self.step_in_epoch, self.loss_sums = state.get("step_in_epoch", 0), state.get("loss_sums", {})
            self.skipped_in_epoch = state.get("skipped_in_epoch", 0)
            set_rng_state(state["rng"])
        except KeyError as err:
            raise DataFormatError(path, f"not a {self.kind} training checkpoint (missing {err})") from None

    def start_from_official(self, path: Path) -> None:
        """Continue an official ``state_epoch_*.pth`` (no scalers or RNG in it, so those start fresh) in a new run:
        the next epoch is its ``epoch + 1``."""
        state = read_checkpoint(path, "official GALIP state_epoch", ("model", "optimizers", "epoch"))
        try:
            self._load_official_layout(state, path)
        except KeyError as err:
            raise DataFormatError(path, f"not an official GALIP state_epoch checkpoint (missing {err})") from None


class Trainer(GANTrainer):
    """GALIP's networks, optimisers and scalers of one process, and the official training step."""

    def __init__(self, config: GALIPConfig, clip_model: nn.Module, where: Dist) -> None:
        self._setup(config, where, build_nets(config, clip_model, where.device), config.mixed_precision,
                    config.growth_interval, config.scaler_min)

    def step(self, images: torch.Tensor, tokens: torch.Tensor, noise: torch.Tensor | None = None
             ) -> dict[str, float] | None:
        """One D step then one G step on a batch; returns the loss parts as floats. Each net's loss terms are checked
        before its update (``finite``): a non-finite one stops training, or with ``skip_nonfinite`` returns None,
        having skipped that update (a bad D term skips the batch; a bad G term skips G's update after D's)."""
        cfg, dev = self.config, self.where.device
        images, tokens = images.to(dev, non_blocking=True), tokens.to(dev, non_blocking=True)
        with torch.no_grad():
            sent, _ = self.nets.text_encoder(tokens)
            real_feats, _ = self.nets.image_encoder(images)
        sent = sent.float().requires_grad_()
        real_feats = real_feats.float().requires_grad_()
        if noise is None:
            noise = torch.randn(images.size(0), cfg.z_dim, device=dev)
        fake = self.G(noise.to(dev), sent)
        fake_feats, fake_emb = self.nets.image_encoder(fake)
        scale = self.scaler_D.get_scale() if self.scaler_D.is_enabled() else None
        d = discriminator_loss(self.D, self.C, real_feats, fake_feats, sent, k=cfg.gp_k, p=cfg.gp_p, scale=scale)
        if not self.finite({"D hinge (real)": d.real, "D hinge (mismatched text)": d.mis, "D hinge (fake)": d.fake,
                            "D MA-GP": d.gp, "D total": d.total}, amp_scaled=("D MA-GP", "D total")):
            return None
        self._scaled_step(d.total, self.opt_D, self.scaler_D)
        g = generator_loss(self.D, self.C, fake_feats, fake_emb, sent, sim_w=cfg.sim_w)
        if not self.finite({"G adversarial": g.adv, "G CLIP similarity": g.sim, "G total": g.total}):
            return None
        self._scaled_step(g.total, self.opt_G, self.scaler_G)
        return {"d_total": d.total.item(), "d_real": d.real.item(), "d_mis": d.mis.item(), "d_fake": d.fake.item(),
                "d_gp": d.gp.item(), "g_total": g.total.item(), "g_adv": g.adv.item(), "g_sim": g.sim.item()}

    def _load_models(self, models: dict, path: Path) -> None:
        from .checkpoints import load_official_netC, load_official_netD, load_official_netG

        load_official_netG(models["netG"], self.nets.netG, path)
        load_official_netD(models["netD"], self.nets.netD, path)
        load_official_netC(models["netC"], self.nets.netC, path)


def _label(config: GALIPConfig) -> str:
    return run_label(config.synthetic, "OpenAI CLIP / ImageNet Inception" if config.random_weights else "")


def check_inputs(config: GALIPConfig) -> None:
    """Fail at start, with one line, on anything the run would otherwise only miss hours later."""
    from common.dfgan_fid import check_eval_files

    check_eval_files(config, "galip")


def train(config: GALIPConfig, resume: bool = False, init_from: str | Path | None = None,
          check_data: bool = True) -> Path:
    """Train for ``config.epochs`` epochs (or the rest of them when resuming, or after the epoch of the official
    checkpoint ``init_from``, continued in a new run); returns the run directory.

    Before anything is written, the train and test splits' caption files and image headers are checked
    (``common.data.text_image.check_images_and_captions``; ``check_data=False``, ``--skip-data-check``, skips it).

    Writes ``config.yaml``, ``metrics.jsonl`` (per-epoch mean losses, FID and CLIP score at test epochs),
    ``previews/epoch_XXXX.png`` (fixed noise and captions), ``checkpoints/last.pt`` and ``losses.png``.
    """
    where = distributed.setup(config.device)
    try:
        return _train(config, resume, where, init_from, check_data)
    finally:
        distributed.teardown()


def epoch_loop(trainer, config, where: Dist, train_set, run_dir: Path,
               step: Callable[[dict], dict[str, float] | None],
               preview: Callable[[Path], Path], evaluate: Callable[[], dict], log_line: Callable[[dict], str]) -> None:
    """Epochs ``trainer.epoch + 1 .. config.epochs``: ``step(batch)`` per batch (its loss parts are averaged over
    the epoch and the processes), ``preview(png)`` every ``gen_interval``, ``evaluate()`` every ``test_interval``,
    one ``metrics.jsonl`` record, log line and ``checkpoints/last.pt`` (atomic) per epoch, and ``last.pt`` also
    every ``save_every_steps`` batches inside an epoch (0: never), a kept copy ``checkpoints/state_epoch_XXX.pth``
    every ``save_interval``; a run resumed mid-epoch continues with the epoch's next batch;
    the last epoch always previews, evaluates and saves. A step that returns None (skipped for a non-finite loss,
    ``skip_nonfinite``) is left out of the means and counted (log line, ``skipped_nonfinite`` in the record)."""
    last = run_dir / "checkpoints" / "last.pt"
    while trainer.epoch < config.epochs:
        epoch, done, sums = trainer.epoch + 1, trainer.step_in_epoch, dict(trainer.loss_sums)
        skipped = trainer.skipped_in_epoch
        trainer.train_mode()
        batches = epoch_loader(train_set, config.batch_size, shuffle=True, seed=config.seed, epoch=epoch,
                               num_workers=config.num_workers, where=where, skip=done)
        total = done + len(batches)
        start = time.perf_counter()
        bar = tqdm(batches, desc=f"epoch {epoch}/{config.epochs}", unit="batch", initial=done, total=total,
                   disable=not where.is_main, leave=False)
        for i, batch in enumerate(bar, start=done + 1):
            trainer.position = (epoch, i - 1)
            losses = step(batch)
            if losses is None:
                skipped += 1
            else:
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.set_postfix(d=f"{losses['d_total']:.3f}", g=f"{losses['g_total']:.3f}")
            if config.save_every_steps and i % config.save_every_steps == 0 and i < total:
                trainer.step_in_epoch, trainer.loss_sums = i, distributed.mean_across(sums, where.device)
                trainer.skipped_in_epoch = skipped
                if where.is_main:  # a long epoch: a kill loses at most save_every_steps batches
                    atomic_save(trainer.state_dict(), last)
        trainer.step_in_epoch, trainer.loss_sums, trainer.skipped_in_epoch = 0, {}, 0
        log_skipped(skipped, epoch)
        if skipped == total:
            raise NonFiniteLoss(f"every step of epoch {epoch} had a non-finite loss (skip_nonfinite): training stopped "
                                "(checkpoints/last.pt holds the last finite state)")
        means = distributed.mean_across({k: v / (total - skipped) for k, v in sums.items()}, where.device)
        trainer.epoch = epoch
        record = {"epoch": epoch, "loss": means, "train_s": round(time.perf_counter() - start, 2)}
        if skipped:
            record["skipped_nonfinite"] = skipped
        if (epoch % config.gen_interval == 0 or epoch == config.epochs) and where.is_main:
            log.info("preview grid %s", preview(run_dir / "previews" / f"epoch_{epoch:04d}.png"))
        if epoch % config.test_interval == 0 or epoch == config.epochs:
            record["eval"] = evaluate()
        if where.is_main:
            log.info(log_line(record))
            with (run_dir / "metrics.jsonl").open("a") as f:
                f.write(json.dumps(record) + "\n")
        if where.is_main:  # every epoch, so a kill loses at most the running one
            atomic_save(trainer.state_dict(), last)
            if epoch % config.save_interval == 0:  # a kept snapshot, under the official file name
                shutil.copyfile(last, last.with_name(f"state_epoch_{epoch:03d}.pth"))


def _train(config: GALIPConfig, resume: bool, where: Dist, init_from: str | Path | None = None,
           check_data: bool = True) -> Path:
    from .colour_check import colour_agreement
    from .evaluate import evaluate
    from .report import plot_losses
    from .sample import PreviewSet

    check_inputs(config)
    if init_from is not None and resume:
        raise DataFormatError(Path(init_from), "--init-from starts a new run from an official checkpoint; "
                                               "--resume continues a run of ours: give one of them")
    if init_from is not None and not Path(init_from).is_file():
        raise DataFormatError(Path(init_from), "checkpoint not found")
    train_set = dataset(config, "train")
    if check_data:  # before the run folder exists: a bad file is one line, not a failure hours into an epoch
        check_images_and_captions(train_set, dataset(config, "test"), progress=where.is_main)
    run_dir, trainer = open_run(config, resume, where, lambda: Trainer(config, load_clip_model(config, where.device),
                                                                       where), train_set)
    preview = PreviewSet.build(config, trainer.nets.text_encoder, where.device)
    resume_or_record(trainer, config, run_dir, resume, where)
    if init_from is not None:
        trainer.start_from_official(Path(init_from))
        log.info("continuing %s from epoch %d in %s", init_from, trainer.epoch, run_dir)
    label = _label(config)

    def evaluation() -> dict:
        result = evaluate(trainer.nets, config, where, seed=config.seed)
        if config.synthetic and where.is_main:  # does G follow the caption? (planted colours; not a paper metric)
            result.update(colour_agreement(trainer.nets, config, where.device, seed=config.seed))
        return result

    epoch_loop(trainer, config, where, train_set, run_dir, lambda b: trainer.step(b["image"], b["tokens"]),
               lambda png: preview.save(trainer.nets.netG, png), evaluation, lambda r: _epoch_line(r, label))
    if where.is_main:
        plot_losses(run_dir, label)
    return run_dir


def loss_line(record: dict, g_parts: tuple[str, ...]) -> str:
    """``epoch N: D total (real, mis, fake, gp) G total (adv, <g_parts>) seconds`` of one metrics record."""
    loss = record["loss"]
    parts = ", ".join(f"{k} {loss['g_' + k]:.4f}" for k in g_parts)
    return (f"epoch {record['epoch']}: D {loss['d_total']:.4f} (real {loss['d_real']:.3f}, mis {loss['d_mis']:.3f}, "
            f"fake {loss['d_fake']:.3f}, gp {loss['d_gp']:.4f}) G {loss['g_total']:.4f} (adv {loss['g_adv']:.3f}, "
            f"{parts}) {record['train_s']:.1f}s")


def _epoch_line(record: dict, label: str) -> str:
    msg = loss_line(record, ("sim",))
    if "eval" in record:
        ev = record["eval"]
        msg += f" | FID {ev['fid']:.2f} CS {ev['clip_score']:.4f} ({ev['n_samples']} samples)"
        if "colour_agreement" in ev:
            msg += f" colour agreement {ev['colour_agreement']:.3f} (majority {ev['colour_baseline']:.3f})"
        msg += label
    return msg

