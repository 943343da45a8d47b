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
from pathlib import Path

import torch

from common import distributed
from common.checkpoints import load_weights
from common.distributed import Dist
from common.run_folder import open_run, resume_or_record

from .config import DENetConfig
from .data import class_ids, dataset
from .gan import GANTrainer, epoch_loop, loss_line
from .losses import discriminator_loss, generator_loss, roll
from .nets import build_nets, encode

log = logging.getLogger(__name__)


class Trainer(GANTrainer):
    """DE-Net's networks, optimisers and scalers of one process (``gan.GANTrainer``), and the training step."""

    def __init__(self, config: DENetConfig, where: Dist, vocab_size: int | None = None) -> None:
        self._setup(config, where, build_nets(config, where.device, vocab_size),
                    amp=config.mixed_precision and where.device.type == "cuda")

    def _autocast(self):
        return torch.autocast("cuda", enabled=self.scaler_G.is_enabled())

    def step(self, images: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor,
             classes: torch.Tensor | None = None) -> dict[str, float] | None:
        """One D step then one G step on a batch; returns the loss parts as floats. Each net's loss terms are checked
        before its update (``finite``): a non-finite one stops training, or with ``skip_nonfinite`` returns None,
        having skipped that update (a bad D term skips the batch; a bad G term skips G's update after D's)."""
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
        if not self.finite({"D hinge (real)": d.real, "D hinge (mismatched text)": d.mis, "D hinge (edited)": d.fake,
                            "D MA-GP": d.gp, "D total": d.total}, amp_scaled=("D MA-GP", "D total")):
            return None
        self._scaled_step(d.total, self.opt_D, self.scaler_D)
        with self._autocast():
            g = generator_loss(self.D, self.C, self.nets.image_encoder, edited, images, t_words, t_sent, t_len, t_cls,
                               cfg.damsm_w, cfg.l1_w, recon, cfg.rec_w)
        if not self.finite({"G adversarial": g.adv, "G DAMSM": g.damsm, "G L1": g.l1, "G reconstruction": g.rec,
                            "G total": g.total}):
            return None
        self._scaled_step(g.total, self.opt_G, self.scaler_G)
        return {"d_total": d.total.item(), "d_real": d.real.item(), "d_mis": d.mis.item(), "d_fake": d.fake.item(),
                "d_gp": d.gp.item(), "g_total": g.total.item(), "g_adv": g.adv.item(), "g_damsm": g.damsm.item(),
                "g_l1": g.l1.item(), "g_rec": g.rec.item()}

    def _load_models(self, models: dict, path: Path) -> None:
        for name in ("netG", "netD", "netC"):
            load_weights(getattr(self.nets, name), models[name], path, self.config.data)


def train(config: DENetConfig, resume: bool = False, check_data: bool = True) -> Path:
    """Train for ``config.epochs`` epochs (or the rest when resuming); returns the run directory.

    Before anything is written, the train and test splits' caption files (each caption with a DAMSM vocabulary word)
    and image headers are checked (``common.data.text_image.check_images_and_captions``; ``check_data=False``,
    ``--skip-data-check``, skips it).

    Writes ``config.yaml``, ``metrics.jsonl`` (per-epoch mean losses; MP, FID ... at test epochs),
    ``previews/epoch_XXXX.png`` (fixed sources, their edits), ``checkpoints/last.pt`` and ``losses.png``.
    """
    where = distributed.setup(config.device)
    try:
        return _train(config, resume, where, check_data)
    finally:
        distributed.teardown()


def _train(config: DENetConfig, resume: bool, where: Dist, check_data: bool = True) -> Path:
    from common.data.text_image import check_images_and_captions
    from common.dfgan_fid import check_eval_files

    from .evaluate import evaluate
    from .report import plot_losses
    from .sample import PreviewSet

    check_eval_files(config, "denet")
    train_set = dataset(config, "train")
    if check_data:  # before the run folder exists: a bad file is one line, not a failure hours into an epoch
        check_images_and_captions(train_set, dataset(config, "test"), progress=where.is_main)
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
