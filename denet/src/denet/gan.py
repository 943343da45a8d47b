"""The DF-GAN-family GAN training loop DE-Net trains with (``tobran/DE-Net:code/lib/modules.py``; GALIP's scheme for
the AMP scalers): the trainer's optimisers, scalers, DDP wrappers and checkpoint state, and the epoch loop with its
previews, evaluations, ``metrics.jsonl`` records and atomic ``last.pt``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from common import distributed
from common.distributed import Dist, epoch_loader
from common.errors import DataFormatError, NonFiniteLoss
from common.fit import finite_everywhere, log_skipped
from common.io import atomic_save
from common.rng import rng_state, set_rng_state

log = logging.getLogger(__name__)
SCALE_RESET = 16384.0


class GANTrainer:
    """DE-Net's trainer minus the step: Adam on G and on D + C, one GradScaler per net with GALIP's floor (a scale
    below ``scaler_min`` is reset to 16384), DDP wrappers (``self.G/D/C``, what a step calls), and the official
    ``state_epoch`` checkpoint layout plus scalers, RNG states and the config."""

    kind = "denet"  # named in the error for a checkpoint of another kind

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
        scale), so they are not checked."""
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

    def load_state_dict(self, state: dict, path: Path) -> None:
        try:
            self._load_models(state["model"], path)
            opts, scalers = state["optimizers"], state["scalers"]
            self.opt_G.load_state_dict(opts["optimizer_G"])
            self.opt_D.load_state_dict(opts["optimizer_D"])
            self.scaler_G.load_state_dict(scalers["scaler_G"])
            self.scaler_D.load_state_dict(scalers["scaler_D"])
            self.epoch = int(state["epoch"])
            self.step_in_epoch, self.loss_sums = state.get("step_in_epoch", 0), state.get("loss_sums", {})
            self.skipped_in_epoch = state.get("skipped_in_epoch", 0)
            set_rng_state(state["rng"])
        except KeyError as err:
            raise DataFormatError(path, f"not a {self.kind} training checkpoint (missing {err})") from None


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


def loss_line(record: dict, g_parts: tuple[str, ...]) -> str:
    """``epoch N: D total (real, mis, fake, gp) G total (adv, <g_parts>) seconds`` of one metrics record."""
    loss = record["loss"]
    parts = ", ".join(f"{k} {loss['g_' + k]:.4f}" for k in g_parts)
    return (f"epoch {record['epoch']}: D {loss['d_total']:.4f} (real {loss['d_real']:.3f}, mis {loss['d_mis']:.3f}, "
            f"fake {loss['d_fake']:.3f}, gp {loss['d_gp']:.4f}) G {loss['g_total']:.4f} (adv {loss['g_adv']:.3f}, "
            f"{parts}) {record['train_s']:.1f}s")
