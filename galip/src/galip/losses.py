"""GALIP training losses: hinge D/G terms, matching-aware gradient penalty (MA-GP), CLIP similarity term.

Follows ``tobran/GALIP:code/lib/modules.py`` (``train``, ``predict_loss``, ``hinge_loss``, ``MA_GP_FP32``,
``MA_GP_MP``) and spec ``text_to_image.md`` 2.6. All functions are shape-agnostic: ``netD`` maps the CLIP features
(officially [B, 3, 768, 7, 7]) to a map, ``netC(map, sent)`` returns one logit per sample (officially [B, 1, 1, 1]).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


class DLoss(NamedTuple):
    """Discriminator loss and its parts; ``pred_real`` is NetC's output on (real, s), kept for logging."""

    total: torch.Tensor
    real: torch.Tensor
    mis: torch.Tensor
    fake: torch.Tensor
    gp: torch.Tensor
    pred_real: torch.Tensor


class GLoss(NamedTuple):
    """Generator loss ``total = -adv - sim_w * sim`` with ``adv = mean NetC(NetD(F_f), s)``, ``sim = mean cos``."""

    total: torch.Tensor
    adv: torch.Tensor
    sim: torch.Tensor


def hinge_loss(output: torch.Tensor, negative: bool) -> torch.Tensor:
    """``mean relu(1 - out)`` for positives, ``mean relu(1 + out)`` for negatives.

    Official ``hinge_loss`` in ``tobran/GALIP:code/lib/modules.py``.
    """
    return F.relu(1.0 + output).mean() if negative else F.relu(1.0 - output).mean()


def mismatch_sent(sent: torch.Tensor) -> torch.Tensor:
    """Mismatched sentences: the batch rolled by one, ``s_hat_i = s_{i+1}`` (last row gets ``s_0``), detached.

    Official ``torch.cat((sent_emb[1:], sent_emb[0:1]), dim=0).detach()`` in ``tobran/GALIP:code/lib/modules.py``
    (``train``); not a random permutation, and DF-GAN rolls the image features instead.
    """
    return torch.roll(sent, shifts=-1, dims=0).detach()


def ma_gp_from_output(
    real_feats: torch.Tensor,
    sent: torch.Tensor,
    out: torch.Tensor,
    k: float = 2.0,
    p: float = 6.0,
    scale: float | None = None,
) -> torch.Tensor:
    """MA-GP from an existing ``out = netC(netD(real_feats), sent)`` (the graph is retained and created).

    ``tobran/GALIP:code/lib/modules.py`` ``MA_GP_FP32`` / ``MA_GP_MP``: with ``O = sum_i out_i``,
    ``g_i = concat(vec dO/dreal_feats[i], vec dO/dsent[i])`` (``create_graph=True``) and
    ``L_gp = k * mean_i ||g_i||_2 ** p`` -- one joint L2 norm over image-feature and sentence gradients.

    ``real_feats`` and ``sent`` must be tensors that require grad and from which ``out`` was computed (leaves in
    practice: the frozen CLIP features and the sentence embedding after ``requires_grad_()``).

    ``scale`` (the AMP variant ``MA_GP_MP``): the gradient of ``scale * O`` is taken and multiplied by
    ``1 / (scale + 1e-8)`` before the norm, as the official code does with ``GradScaler.get_scale()``. The official
    norm runs under CUDA autocast; here it runs in the gradients' dtype.
    """
    if not (real_feats.requires_grad and sent.requires_grad):
        raise ValueError("ma_gp needs real_feats and sent that require grad (call .requires_grad_() first)")
    target = out * scale if scale is not None else out
    grads = torch.autograd.grad(
        outputs=target, inputs=(real_feats, sent), grad_outputs=torch.ones_like(target),
        retain_graph=True, create_graph=True,
    )
    if scale is not None:
        inv_scale = 1.0 / (scale + 1e-8)
        grads = tuple(g * inv_scale for g in grads)
    grad = torch.cat([g.reshape(g.size(0), -1) for g in grads], dim=1)
    grad_l2norm = torch.sqrt(torch.sum(grad**2, dim=1))
    return k * torch.mean(grad_l2norm**p)


def ma_gp(
    netD: nn.Module,  # noqa: N803
    netC: nn.Module,  # noqa: N803
    real_feats: torch.Tensor,
    sent: torch.Tensor,
    k: float = 2.0,
    p: float = 6.0,
    scale: float | None = None,
) -> torch.Tensor:
    """Matching-aware gradient penalty ``k * mean_i ||g_i||_2 ** p`` with ``out = netC(netD(real_feats), sent)``.

    ``tobran/GALIP:code/lib/modules.py`` ``MA_GP_FP32`` / ``MA_GP_MP`` (k = 2, p = 6). ``real_feats`` (the frozen
    CLIP features of the real images, e.g. computed under ``no_grad``) and ``sent`` must be leaves that require grad;
    the gradient is w.r.t. them, not the pixels. See :func:`ma_gp_from_output` for ``scale`` (AMP variant).
    """
    out = netC(netD(real_feats), sent)
    return ma_gp_from_output(real_feats, sent, out, k=k, p=p, scale=scale)


def discriminator_loss(
    netD: nn.Module,  # noqa: N803
    netC: nn.Module,  # noqa: N803
    real_feats: torch.Tensor,
    fake_feats: torch.Tensor,
    sent: torch.Tensor,
    k: float = 2.0,
    p: float = 6.0,
    scale: float | None = None,
) -> DLoss:
    """``L_D = L_real + (L_fake + L_mis) / 2 + L_gp`` as in ``tobran/GALIP:code/lib/modules.py`` (``train``).

    - ``L_real = mean relu(1 - C(D(F_r), s))``;
    - ``L_mis = mean relu(1 + C(D(F_r), s_hat))`` with ``s_hat_i = s_{i+1}`` (:func:`mismatch_sent`, detached);
    - ``L_fake = mean relu(1 + C(D(F_f.detach()), s))``;
    - ``L_gp`` = MA-GP on the same ``C(D(F_r), s)`` graph (:func:`ma_gp_from_output`).

    ``real_feats`` and ``sent`` must be leaves that require grad (for the MA-GP); ``fake_feats`` is detached here.
    """
    real_map = netD(real_feats)  # one NetD pass shared by the real and mismatched terms, as officially
    pred_real = netC(real_map, sent)
    err_real = hinge_loss(pred_real, negative=False)
    err_mis = hinge_loss(netC(real_map, mismatch_sent(sent)), negative=True)
    err_fake = hinge_loss(netC(netD(fake_feats.detach()), sent), negative=True)
    err_gp = ma_gp_from_output(real_feats, sent, pred_real, k=k, p=p, scale=scale)
    total = err_real + (err_fake + err_mis) / 2.0 + err_gp
    return DLoss(total, err_real, err_mis, err_fake, err_gp, pred_real)


def generator_loss(
    netD: nn.Module,  # noqa: N803
    netC: nn.Module,  # noqa: N803
    fake_feats: torch.Tensor,
    fake_emb: torch.Tensor,
    sent: torch.Tensor,
    sim_w: float = 4.0,
) -> GLoss:
    """``L_G = -mean C(D(F_f), s) - sim_w * mean cos(e_f, s)`` (``tobran/GALIP:code/lib/modules.py``, ``train``).

    ``fake_feats``/``fake_emb`` are the training CLIP's features and projected embedding of the fake images, not
    detached (officially reused from the D step, after the D update); ``sim_w`` = 4.
    """
    adv = netC(netD(fake_feats), sent).mean()
    sim = torch.cosine_similarity(fake_emb, sent).mean()
    return GLoss(-adv - sim_w * sim, adv, sim)
