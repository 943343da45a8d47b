"""DE-Net discriminator ``NetD`` and conditional head ``NetC`` (``tobran/DE-Net:code/models/model.py``).

NetD(ndf): block0..5 = conv 4x4 / 2 (pad 1, no bias) -> BatchNorm (not in block0) -> LeakyReLU 0.2, channels
3 -> ndf -> 2 -> 4 -> 8 -> 8 -> 8 x ndf, 256 px -> [B, 8ndf, 4, 4]. Unlike DF-GAN/GALIP it uses BatchNorm, so the
discriminator output of one sample depends on the batch in training mode.
NetC(ndf): tile the 256-d sentence to 4x4, concatenate, conv 3x3 (-> 2ndf, no bias) -> LeakyReLU 0.2 -> conv 4x4
valid (-> 1, no bias) -> [B, 1, 1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import COND_DIM, SLOPE
from .generator import levels


class D_Block(nn.Module):  # noqa: N801  (official class name)
    """conv (no bias) -> optional BatchNorm (``batchnorm``) -> LeakyReLU 0.2."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int, padding: int, bn: bool = True) -> None:
        super().__init__()
        self.bn = bn
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, bias=False)
        self.batchnorm = nn.BatchNorm2d(out_ch) if bn else None

    def forward(self, h: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv(h)
        if self.batchnorm is not None:
            h = self.batchnorm(h)
        return F.leaky_relu(h, SLOPE)


class NetD(nn.Module):
    """Image feature extractor [B,3,imsize,imsize] -> [B, 8ndf, 4, 4]; a smaller ``imsize`` than the official 256
    keeps the first log2(imsize) - 2 blocks of the same channel plan with the last one widened to 8 ndf."""

    def __init__(self, ndf: int, imsize: int = 256) -> None:
        super().__init__()
        self.levels = levels(imsize)
        mult = [1, 2, 4, 8, 8, 8][:self.levels]
        mult[-1] = 8
        for k, out_mult in enumerate(mult):
            in_ch = 3 if k == 0 else ndf * mult[k - 1]
            setattr(self, f"block{k}", D_Block(in_ch, ndf * out_mult, 4, 2, 1, bn=k > 0))

    def forward(self, out: torch.Tensor) -> torch.Tensor:
        h = out
        for k in range(self.levels):
            h = getattr(self, f"block{k}")(h)
        return h


class NetC(nn.Module):
    """Conditional logit from D's 4x4 features and the 256-d sentence code."""

    def __init__(self, ndf: int) -> None:
        super().__init__()
        self.joint_conv = nn.Sequential(
            nn.Conv2d(ndf * 8 + COND_DIM, ndf * 2, 3, 1, 1, bias=False),
            nn.LeakyReLU(SLOPE),
            nn.Conv2d(ndf * 2, 1, 4, 1, 0, bias=False),
        )

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y = y.view(-1, COND_DIM, 1, 1).expand(-1, -1, out.shape[2], out.shape[3])
        return self.joint_conv(torch.cat((out, y), 1))
