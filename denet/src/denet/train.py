"""DE-Net training (``tobran/DE-Net:code/src/train.py``; the step itself is this reproduction's, see ``losses``).

Per batch: encode the captions with the frozen DAMSM text encoder; the edit target of image i is the caption of
image i+1; one G forward gives the edited images (and, when ``rec_w`` > 0, in the same batched forward the
sources edited with their own captions, for the reconstruction term); one D step (Adam on NetD + NetC), then one G
step on the same edited images. Optional CUDA AMP with one GradScaler per net (GALIP's scheme; official DE-Net has
none), ``torchrun`` + DDP, atomic checkpoints in the official ``state_epoch`` layout
(``model``/``optimizers``/``epoch``) plus scalers, RNG states and the config, and an exact resume.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from common.runs import load_weights
from galip import distributed
from galip.distributed import Dist
from galip.train import GANTrainer, epoch_loop, loss_line, open_run, resume_or_record

from .config import DENetConfig
from .damsm import CNN_ENCODER, RNN_ENCODER, load_damsm
from .data import class_ids, dataset, n_words
from .losses import discriminator_loss, generator_loss, roll
from .models import NetC, NetD, NetG

log = logging.getLogger(__name__)


@dataclass
class Nets:
    netG: NetG  # noqa: N815
    netD: NetD  # noqa: N815
    netC: NetC  # noqa: N815
    text_encoder: RNN_ENCODER
    image_encoder: CNN_ENCODER


def load_encoders(config: DENetConfig, device: torch.device, vocab_size: int | None = None
                  ) -> tuple[RNN_ENCODER, CNN_ENCODER]:
    """The frozen DAMSM encoders named by the config (strict; one-line errors for a missing or wrong file).
    ``vocab_size`` defaults to the size of the dataset's DAMSM vocabulary."""
    text_encoder, image_encoder = load_damsm(config.text_encoder, config.image_encoder,
                                             vocab_size or n_words(config), input_size=config.damsm_input_size)
    return text_encoder.to(device), image_encoder.to(device)


def build_nets(config: DENetConfig, device: torch.device, vocab_size: int | None = None) -> Nets:
    """``NetG(nf, z_dim)``, ``NetD(nf)``, ``NetC(nf)`` (official ``prepare_models``) and the frozen DAMSM."""
    text_encoder, image_encoder = load_encoders(config, device, vocab_size)
    netG = NetG(config.nf, imsize=config.imsize).to(device)  # noqa: N806
    netD = NetD(config.nf, config.imsize).to(device)  # noqa: N806
    return Nets(netG, netD, NetC(config.nf).to(device), text_encoder, image_encoder)


@torch.no_grad()
def encode(text_encoder: RNN_ENCODER, tokens: torch.Tensor, lengths: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """DAMSM (words [B, 256, T], sentence [B, 256]) of word ids [B, words_num] (frozen, eval mode)."""
    words, sent = text_encoder(tokens, lengths)
    return words.detach(), sent.detach()


class Trainer(GANTrainer):
    """DE-Net's networks, optimisers and scalers of one process (GALIP's trainer plumbing), and the training step."""

    kind = "denet"

    def __init__(self, config: DENetConfig, where: Dist, vocab_size: int | None = None) -> None:
        self._setup(config, where, build_nets(config, where.device, vocab_size),
                    amp=config.mixed_precision and where.device.type == "cuda")

    def _autocast(self):
        return torch.autocast("cuda", enabled=self.scaler_G.is_enabled())

    def step(self, images: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor,
             classes: torch.Tensor | None = None) -> dict[str, float]:
        """One D step then one G step on a batch; returns the loss parts as floats."""
        cfg, dev = self.config, self.where.device
        images, tokens, lengths = images.to(dev), tokens.to(dev), lengths.to(dev)
        words, sent = encode(self.nets.text_encoder, tokens, lengths)
        t_words, t_sent, t_len = roll(words), roll(sent), roll(lengths)
        t_cls = None if classes is None else roll(classes).to(dev)
        with self._autocast():
            if cfg.rec_w:
                edited, recon = self.G(torch.cat((images, images)), torch.cat((t_sent, sent))).chunk(2)
            else:
                edited, recon = self.G(images, t_sent), None
            scale = self.scaler_D.get_scale() if self.scaler_D.is_enabled() else None
            d = discriminator_loss(self.D, self.C, images.clone(), sent.clone(), edited, t_sent, cfg.gp_k, cfg.gp_p,
                                   scale)
        self._scaled_step(d.total, self.opt_D, self.scaler_D)
        with self._autocast():
            g = generator_loss(self.D, self.C, self.nets.image_encoder, edited, images, t_words, t_sent, t_len, t_cls,
                               cfg.damsm_w, cfg.l1_w, recon, cfg.rec_w)
        self._scaled_step(g.total, self.opt_G, self.scaler_G)
        return {"d_total": d.total.item(), "d_real": d.real.item(), "d_mis": d.mis.item(), "d_fake": d.fake.item(),
                "d_gp": d.gp.item(), "g_total": g.total.item(), "g_adv": g.adv.item(), "g_damsm": g.damsm.item(),
                "g_l1": g.l1.item(), "g_rec": g.rec.item()}

    def _load_models(self, models: dict, path: Path) -> None:
        for name in ("netG", "netD", "netC"):
            load_weights(getattr(self.nets, name), models[name], path, self.config.data)


def train(config: DENetConfig, resume: bool = False) -> Path:
    """Train for ``config.epochs`` epochs (or the rest when resuming); returns the run directory.

    Writes ``config.yaml``, ``metrics.jsonl`` (per-epoch mean losses; MP, FID ... at test epochs),
    ``previews/epoch_XXXX.png`` (fixed sources, their edits), ``checkpoints/last.pt`` and ``losses.png``.
    """
    where = distributed.setup(config.device)
    try:
        return _train(config, resume, where)
    finally:
        distributed.teardown()


def _train(config: DENetConfig, resume: bool, where: Dist) -> Path:
    from .evaluate import check_eval_files, evaluate
    from .report import plot_losses
    from .sample import PreviewSet

    check_eval_files(config)
    train_set = dataset(config, "train")
    run_dir, trainer = open_run(config, resume, where, lambda: Trainer(config, where), train_set)
    preview = PreviewSet.build(config, trainer.nets.text_encoder, where.device)
    resume_or_record(trainer, config, run_dir, resume, where)
    label = config.label()

    def step(batch: dict) -> dict[str, float]:
        return trainer.step(batch["image"], batch["tokens"], batch["length"], class_ids(batch["key"], config.dataset))

    epoch_loop(trainer, config, where, train_set, run_dir, step, lambda png: preview.save(trainer.nets.netG, png),
               lambda: evaluate(trainer.nets, config, where, seed=config.seed), lambda r: _epoch_line(r, label))
    if where.is_main:
        plot_losses(run_dir, label)
    return run_dir


def _epoch_line(record: dict, label: str) -> str:
    msg = loss_line(record, ("damsm", "l1", "rec"))
    if "eval" in record:
        ev = record["eval"]
        msg += (f" | MP {ev['mp']:.4f} (sim {ev['sim']:.4f}, diff {ev['diff']:.4f}) FID {ev['fid']:.2f} "
                f"({ev['n_samples']} edits)")
        if "colour_hit" in ev:
            msg += (f" colour hit {ev['colour_hit']:.3f} (chance {ev['colour_chance']:.3f}), background L1 "
                    f"{ev['background_l1']:.4f}, shape L1 {ev['shape_l1']:.4f}")
        msg += label
    return msg
