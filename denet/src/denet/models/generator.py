"""DE-Net generator: a U-Net over the source image with text-guided DEBlocks (Tao et al., AAAI 2023, Sec. 3).

Follows ``tobran/DE-Net:code/models/model.py`` (``DEBlock``, ``NetG``); attribute names equal the official ones.
Channel plan (ngf = 32 at 256 px): ext 3->ngf [256]; down1..6 -> 2,4,8,8,8,8 x ngf [128..4];
yp1..6 (structure path) -> 8,8,8,4,2,1 x ngf [8..256]; cwp -> ti [B, 1024]; up1..6 (DEBlock) -> 8,8,8,4,2,1 x ngf
[8..256]; conv_img: LeakyReLU -> conv 3x3 ngf->3 -> tanh.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import CAFF, COND_DIM, SLOPE, UNetDown, UNetYp
from .cwp import CWP
from .dcblock import DCBlock


def levels(imsize: int) -> int:
    """Number of U-Net levels that take ``imsize`` down to 4 x 4 (6 at the official 256 px)."""
    if imsize not in (32, 64, 128, 256):
        raise ValueError(f"imsize must be 32, 64, 128 or 256, got {imsize}")
    return imsize.bit_length() - 3


class DEBlock(nn.Module):
    """Dual-branch decoder block: ``w * h_m + (1 - w) * h_s + skip``.

    ``h = conv3x3(nearest x2(h_prev))``; channel-wise branch ``h_m = LReLU(CAFF(h, c))``; spatial-wise branch
    ``h_s = LReLU(DCBlk(h, mask, c))``; ``w = sigmoid(fc.linear2(ti))`` per channel, with ``fc.linear2`` W=0, b=0 at
    init (official ``_initialize``), so w = 0.5 at start.
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.CAFF = CAFF(out_ch)
        self.DCBlk = DCBlock(out_ch)
        self.fc = nn.Sequential(OrderedDict([
            ("linear2", nn.Linear(COND_DIM * 4, out_ch)),
            ("sigmoid", nn.Sigmoid()),
        ]))
        self._initialize()

    def _initialize(self) -> None:
        nn.init.zeros_(self.fc.linear2.weight)
        nn.init.zeros_(self.fc.linear2.bias)

    def combination_weights(self, ti: torch.Tensor) -> torch.Tensor:
        """Per-channel weights w [B, out, 1, 1] of the channel-wise branch (1 - w goes to the spatial branch)."""
        return self.fc(ti)[:, :, None, None]

    def forward(self, h: torch.Tensor, skip: torch.Tensor, mask: torch.Tensor, y: torch.Tensor,
                ti: torch.Tensor) -> torch.Tensor:
        h = self.conv(F.interpolate(h, scale_factor=2))
        h_m = F.leaky_relu(self.CAFF(h, y), SLOPE)
        h_s = F.leaky_relu(self.DCBlk(h, mask, y), SLOPE)
        w = self.combination_weights(ti)
        return w * h_m + (1 - w) * h_s + skip


class NetG(nn.Module):
    """U-Net editor ``NetG(ngf, nz, imsize)``: (source [B,3,imsize,imsize] in [-1,1], sentence [B,256]) -> edit.

    ``nz`` is accepted for signature parity and unused (the official NetG takes no noise). At 256 px (the official,
    only size) there are six levels; a smaller ``imsize`` keeps the first log2(imsize) - 2 downs and the last as many
    ups of the same channel plan, so the bottleneck is still 8 ngf x 4 x 4 (CWP's input).
    """

    def __init__(self, ngf: int = 64, nz: int = 100, imsize: int = 256) -> None:
        super().__init__()
        self.ngf = ngf
        self.levels = levels(imsize)
        self.ext = nn.Conv2d(3, ngf, 3, 1, 1)
        down = [(1, 2), (2, 4), (4, 8), (8, 8), (8, 8), (8, 8)][:self.levels]
        up = [(8, 8), (8, 8), (8, 8), (8, 4), (4, 2), (2, 1)][6 - self.levels:]
        for k, (i, o) in enumerate(down, start=1):
            setattr(self, f"down{k}", UNetDown(ngf * i, ngf * o))
        for k, (i, o) in enumerate(up, start=1):
            setattr(self, f"yp{k}", UNetYp(ngf * i, ngf * o))
        for k, (i, o) in enumerate(up, start=1):
            setattr(self, f"up{k}", DEBlock(ngf * i, ngf * o))
        self.cwp = CWP(ngf * 8, COND_DIM)
        self.conv_img = nn.Sequential(
            nn.LeakyReLU(SLOPE),
            nn.Conv2d(ngf, 3, 3, 1, 1),
            nn.Tanh(),
        )

    def forward(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.ext(img)
        skips = []
        n = self.levels
        for k in range(1, n + 1):
            h, s = getattr(self, f"down{k}")(h)
            skips.append(s)  # s1 = ext output, s2..s6 = d1..d5 (at 256 px)
        bottleneck = h
        masks, m = [], bottleneck
        for k in range(1, n + 1):
            m = getattr(self, f"yp{k}")(m, skips[n - k])
            masks.append(m)
        ti = self.cwp(bottleneck, c)
        u = bottleneck
        for k in range(1, n + 1):
            u = getattr(self, f"up{k}")(u, skips[n - k], masks[k - 1], c, ti)
        return self.conv_img(u)
