"""DE-Net's training objective. The official ``lib/modules.py`` was never released (spec 3.5), so this is the
DF-GAN discriminator the official code's layout implies plus two generator terms of our choice (README table).

Discriminator (DF-GAN, ``tobran/DF-GAN:code/lib/modules.py``; Tao et al. 2022, Eq. 1): hinge on (real, own text),
(real, mismatched text) and (edited, target text), the latter two halved, plus the matching-aware gradient penalty
MA-GP = k * mean(||(grad_x C(D(x), s), grad_s C(D(x), s))||_2 ^ p) on the real pairs (k 2, p 6).
Generator: -C(D(edited), target text) + ``damsm_w`` * DAMSM(edited, target text) (AttnGAN Eq. 14: word + sentence
terms, both directions) + ``l1_w`` * L1(edited, source) (a content term as ManiGAN's, in pixels instead of VGG
features) + ``rec_w`` * L1(G(source, own caption), source) (the reconstruction term of TAGAN, Nam et al. 2018:
edited with its own caption, the source must come back, which teaches the editor to keep what the text does not
change without pinning the edit itself to the source).
Mismatched pairs roll the batch by one (DF-GAN's roll of the real features); the edit target of image i is the
caption of image i+1 (the same roll), so no extra encoding is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .damsm import sent_loss, words_loss


def roll(x: torch.Tensor) -> torch.Tensor:
    """Batch rolled by one: row i becomes row i+1 (DF-GAN's ``cat((x[1:], x[0:1]))``)."""
    return torch.cat((x[1:], x[:1]))


def ma_gp(images: torch.Tensor, sent: torch.Tensor, out: torch.Tensor, k: float, p: float,
          scale: float | None = None) -> torch.Tensor:
    """k * mean over the batch of the p-th power of the joint L2 norm of d out / d (image, sentence).

    ``out`` must be computed from ``images`` and ``sent`` (both requiring grad). Under AMP pass the GradScaler's
    ``scale``: the gradients are taken of the scaled output and divided by it (GALIP's ``MA_GP_MP``)."""
    target = out if scale is None else out * scale
    grads = torch.autograd.grad(target, (images, sent), grad_outputs=torch.ones_like(target), retain_graph=True,
                                create_graph=True, only_inputs=True)
    flat = torch.cat([g.reshape(g.size(0), -1) for g in grads], dim=1)
    if scale is not None:
        flat = flat / scale
    return k * flat.float().norm(2, dim=1).pow(p).mean()


@dataclass
class DLoss:
    total: torch.Tensor
    real: torch.Tensor
    mis: torch.Tensor
    fake: torch.Tensor
    gp: torch.Tensor


@dataclass
class GLoss:
    total: torch.Tensor
    adv: torch.Tensor
    damsm: torch.Tensor
    l1: torch.Tensor
    rec: torch.Tensor


def discriminator_loss(D, C, images: torch.Tensor, sent: torch.Tensor, edited: torch.Tensor,  # noqa: N803
                       target_sent: torch.Tensor, k: float = 2.0, p: float = 6.0,
                       scale: float | None = None) -> DLoss:
    """DF-GAN's ``errD_real + (errD_fake + errD_mis) / 2 + errD_MAGP``; ``edited`` is detached here."""
    images = images.requires_grad_()
    sent = sent.requires_grad_()
    real_features = D(images)
    pred_real = C(real_features, sent)
    real = F.relu(1.0 - pred_real).mean()
    mis = F.relu(1.0 + C(roll(real_features), sent)).mean()
    fake = F.relu(1.0 + C(D(edited.detach()), target_sent)).mean()
    gp = ma_gp(images, sent, pred_real, k, p, scale)
    return DLoss(real + (fake + mis) / 2.0 + gp, real, mis, fake, gp)


def damsm_loss(image_encoder, edited: torch.Tensor, words: torch.Tensor, sent: torch.Tensor,
               lengths: torch.Tensor, class_ids: torch.Tensor | None) -> torch.Tensor:
    """AttnGAN's generator DAMSM term (w0 + w1 + s0 + s1) of images i against captions i (labels arange(B))."""
    region, code = image_encoder(edited)
    labels = torch.arange(edited.size(0), device=edited.device)
    w0, w1, _ = words_loss(region, words, labels, lengths, class_ids)
    s0, s1 = sent_loss(code, sent, labels, class_ids)
    return w0 + w1 + s0 + s1


def generator_loss(D, C, image_encoder, edited: torch.Tensor, source: torch.Tensor,  # noqa: N803
                   target_words: torch.Tensor, target_sent: torch.Tensor, target_lengths: torch.Tensor,
                   target_class_ids: torch.Tensor | None, damsm_w: float, l1_w: float,
                   recon: torch.Tensor | None = None, rec_w: float = 0.0) -> GLoss:
    """``-mean C(D(edited), target) + damsm_w * DAMSM + l1_w * mean |edited - source| + rec_w * mean |recon -
    source|`` (``recon``: the source edited with its own caption); a zero weight skips its term (and its cost)."""
    adv = -C(D(edited), target_sent).mean()
    zero = adv.new_zeros(())
    dam = (damsm_loss(image_encoder, edited, target_words, target_sent, target_lengths, target_class_ids)
           if damsm_w else zero)
    l1 = F.l1_loss(edited.float(), source.float()) if l1_w else zero
    if rec_w and recon is None:
        raise ValueError("rec_w > 0 needs recon, the source edited with its own caption")
    rec = F.l1_loss(recon.float(), source.float()) if rec_w else zero
    return GLoss(adv + damsm_w * dam + l1_w * l1 + rec_w * rec, adv, dam, l1, rec)
