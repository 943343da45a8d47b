"""Editing metrics: manipulative precision (MP; ManiGAN, Li et al. CVPR 2020, Sec. 5) and its parts.

For a source x and its edit x' (both mapped from [-1, 1] to [0, 1]) and the target text t:
- ``diff`` = mean over channels and pixels of |x' - x| (the L1 pixel difference, in [0, 1]);
- ``mse`` = mean of (x' - x)^2;
- ``sim`` = cos(DAMSM image code of x', DAMSM sentence code of t) (AttnGAN's encoders, as ManiGAN);
- ``MP`` = (1 - diff) * sim, per edit, averaged over the edits.
ManiGAN states MP = (1 - diff) x sim; DE-Net's code logs it (``mp``) with DAMSM and, as ``mp_c``, with CLIP, but its
metric code is unreleased (spec 3.6): the normalisation above (mean over C*H*W in [0, 1]) is the common reading.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pixel_differences(source: torch.Tensor, edited: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image (L1 ``diff``, ``mse``) [B] of images in [-1, 1], measured in [0, 1] units."""
    a, b = (source.float() + 1) / 2, (edited.float() + 1) / 2
    return (b - a).abs().flatten(1).mean(1), (b - a).pow(2).flatten(1).mean(1)


def manipulative_precision(diff: torch.Tensor, sim: torch.Tensor) -> torch.Tensor:
    """Per-edit MP = (1 - diff) * sim."""
    return (1.0 - diff) * sim


def text_image_similarity(image_code: torch.Tensor, sent: torch.Tensor) -> torch.Tensor:
    """Per-pair cosine [B] of DAMSM image codes and sentence codes (row i with row i)."""
    return F.cosine_similarity(image_code.float(), sent.float(), dim=1, eps=1e-8)
