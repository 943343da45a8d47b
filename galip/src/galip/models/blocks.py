"""Text-conditioned building blocks of GALIP's generator.

Follows ``tobran/GALIP:code/models/GALIP.py`` (``Affine``, ``DFBLK``, ``M_Block``, ``G_Block``), which inherit
DF-GAN's deep text-image fusion block (Tao et al., CVPR 2022, Sec. 3.3) and GALIP (CVPR 2023, Sec. 3.3, Mate-G).
Attribute names equal the official ones so that official state-dict keys map 1:1.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


class Affine(nn.Module):
    """Channel-wise affine conditioned on c: gamma(c) * x + beta(c); gamma, beta = Linear-ReLU-Linear MLPs.

    Init (official ``_initialize``): ``fc_gamma.linear2`` W=0, b=1 and ``fc_beta.linear2`` W=0, b=0, so a fresh
    Affine is the identity map.
    """

    def __init__(self, cond_dim: int, num_features: int) -> None:
        super().__init__()
        self.fc_gamma = self._mlp(cond_dim, num_features)
        self.fc_beta = self._mlp(cond_dim, num_features)
        nn.init.zeros_(self.fc_gamma.linear2.weight)
        nn.init.ones_(self.fc_gamma.linear2.bias)
        nn.init.zeros_(self.fc_beta.linear2.weight)
        nn.init.zeros_(self.fc_beta.linear2.bias)

    @staticmethod
    def _mlp(cond_dim: int, num_features: int) -> nn.Sequential:
        return nn.Sequential(OrderedDict([
            ("linear1", nn.Linear(cond_dim, num_features)),
            ("relu1", nn.ReLU(inplace=True)),
            ("linear2", nn.Linear(num_features, num_features)),
        ]))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        weight, bias = self.fc_gamma(y), self.fc_beta(y)
        if weight.dim() == 1:
            weight, bias = weight.unsqueeze(0), bias.unsqueeze(0)
        return weight[..., None, None] * x + bias[..., None, None]


class DFBlock(nn.Module):
    """Deep fusion block (official ``DFBLK``): affine0 -> LeakyReLU(0.2) -> affine1 -> LeakyReLU(0.2)."""

    def __init__(self, cond_dim: int, in_ch: int) -> None:
        super().__init__()
        self.affine0 = Affine(cond_dim, in_ch)
        self.affine1 = Affine(cond_dim, in_ch)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.affine0(x, y), 0.2)
        return F.leaky_relu(self.affine1(h, y), 0.2)


class MBlock(nn.Module):
    """Bridge-feature block (official ``M_Block``): x + [conv1 -> fuse1 -> conv2 -> fuse2](x); ``c_sc`` if in != out."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int, cond_dim: int, k: int, s: int, p: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, mid_ch, k, s, p)
        self.fuse1 = DFBlock(cond_dim, mid_ch)
        self.conv2 = nn.Conv2d(mid_ch, out_ch, k, s, p)
        self.fuse2 = DFBlock(cond_dim, out_ch)
        self.learnable_sc = in_ch != out_ch
        if self.learnable_sc:
            self.c_sc = nn.Conv2d(in_ch, out_ch, 1, stride=1, padding=0)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        sc = self.c_sc(h) if self.learnable_sc else h
        r = self.fuse2(self.conv2(self.fuse1(self.conv1(h), c)), c)
        return sc + r


class GBlock(nn.Module):
    """Generator block (official ``G_Block``): nearest resize to ``imsize``, then shortcut + residual.

    residual = fuse1 -> c1 (3x3, in->out) -> fuse2 -> c2 (3x3); shortcut = 1x1 ``c_sc`` when in != out.
    """

    def __init__(self, cond_dim: int, in_ch: int, out_ch: int, imsize: int) -> None:
        super().__init__()
        self.imsize = imsize
        self.learnable_sc = in_ch != out_ch
        self.c1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.c2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.fuse1 = DFBlock(cond_dim, in_ch)
        self.fuse2 = DFBlock(cond_dim, out_ch)
        if self.learnable_sc:
            self.c_sc = nn.Conv2d(in_ch, out_ch, 1, stride=1, padding=0)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(h, size=(self.imsize, self.imsize))  # nearest
        sc = self.c_sc(h) if self.learnable_sc else h
        r = self.c2(self.fuse2(self.c1(self.fuse1(h, y)), y))
        return sc + r
