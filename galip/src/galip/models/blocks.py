"""Text-conditioned building blocks of GALIP's generator.

Follows ``tobran/GALIP:code/models/GALIP.py`` (``Affine``, ``DFBLK``, ``M_Block``, ``G_Block``), which inherit
DF-GAN's deep text-image fusion block (Tao et al., CVPR 2022, Sec. 3.3) and GALIP (CVPR 2023, Sec. 3.3, Mate-G).
Attribute names equal the official ones so that official state-dict keys map 1:1.

Inference fast path: when autograd records nothing (``torch.no_grad`` / ``torch.inference_mode``), the blocks run
the very same element-wise ops in the same order, but write them into activations that the block itself made (or
that its caller hands over with ``inplace=True``), and do the exact 2x nearest upscale as one broadcast copy. This
saves allocating (and page-faulting) a full-size tensor per op, which dominates the element-wise cost on CPU; the
outputs are bitwise equal to the out-of-place forward. With autograd on (training), the plain out-of-place ops run.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


def _inference() -> bool:
    """True when no autograd graph is recorded, so fresh intermediate tensors may be overwritten."""
    return not torch.is_grad_enabled()


def _add_residual(sc: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """``sc + r``; in inference the fresh residual output ``r`` takes the (commutative, so identical) sum."""
    return r.add_(sc) if _inference() and r.dtype == sc.dtype else sc + r


def _upsample_nearest(x: torch.Tensor, size: int) -> torch.Tensor:
    """``F.interpolate(x, size=(size, size))`` (nearest). An exact 2x upscale in inference is one broadcast copy.

    PyTorch maps output index i to input index i >> 1 for a 2x nearest resize, which is exactly the broadcast.
    """
    b, c, h, w = x.shape
    if _inference() and size == 2 * h and size == 2 * w:
        return x[:, :, :, None, :, None].expand(b, c, h, 2, w, 2).reshape(b, c, size, size)
    return F.interpolate(x, size=(size, size))


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

    def forward(self, x: torch.Tensor, y: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """``gamma(y) * x + beta(y)``. In inference the bias is added in place, and ``inplace`` (the caller gives up
        ``x``) writes the product into ``x`` as well (same values: x * w == w * x)."""
        weight, bias = self.fc_gamma(y), self.fc_beta(y)
        if weight.dim() == 1:
            weight, bias = weight.unsqueeze(0), bias.unsqueeze(0)
        weight, bias = weight[..., None, None], bias[..., None, None]
        if not _inference() or x.dtype != weight.dtype:
            return weight * x + bias
        return (x.mul_(weight) if inplace else weight * x).add_(bias)


class DFBlock(nn.Module):
    """Deep fusion block (official ``DFBLK``): affine0 -> LeakyReLU(0.2) -> affine1 -> LeakyReLU(0.2)."""

    def __init__(self, cond_dim: int, in_ch: int) -> None:
        super().__init__()
        self.affine0 = Affine(cond_dim, in_ch)
        self.affine1 = Affine(cond_dim, in_ch)

    def forward(self, x: torch.Tensor, y: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """``inplace``: the caller gives up ``x``, which inference may then overwrite (training never does)."""
        own = _inference()  # affine0 made h, so everything after it may update h in place
        h = F.leaky_relu(self.affine0(x, y, inplace), 0.2, inplace=own)
        return F.leaky_relu(self.affine1(h, y, inplace=True), 0.2, inplace=own)


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
        r = self.fuse2(self.conv2(self.fuse1(self.conv1(h), c, inplace=True)), c, inplace=True)
        return _add_residual(sc, r)


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
        h = _upsample_nearest(h, self.imsize)
        sc = self.c_sc(h) if self.learnable_sc else h
        # h (fresh from the resize) may be overwritten by fuse1 once the shortcut no longer needs it
        r = self.c2(self.fuse2(self.c1(self.fuse1(h, y, inplace=self.learnable_sc)), y, inplace=True))
        return _add_residual(sc, r)
