"""GALIP discriminator (Mate-D): CD-blocks over frozen CLIP-ViT features, and the text-conditioned judge NetC.

Follows ``tobran/GALIP:code/models/GALIP.py`` (``D_Block``, ``NetD``, ``NetC``) and GALIP (CVPR 2023, Sec. 3.2,
CLIP-based Discriminator). The CLIP features come from ``CLIPImageEncoder`` ([B, 3, 768, 7, 7]).
"""

from __future__ import annotations

import torch
from torch import nn

from .generator import _autocast


class DBlock(nn.Module):
    """Official ``D_Block``: x' + gamma * r (+ beta * CLIP_feat), r = [conv3x3 -> LReLU -> conv3x3 -> LReLU] (no bias).

    ``conv_s`` (1x1) is always built but applied only when fin != fout; gamma and beta are scalars initialised to 0.
    """

    def __init__(self, fin: int, fout: int, k: int, s: int, p: int, res: bool, CLIP_feat: bool) -> None:  # noqa: N803
        super().__init__()
        self.res, self.CLIP_feat = res, CLIP_feat
        self.learned_shortcut = fin != fout
        self.conv_r = nn.Sequential(
            nn.Conv2d(fin, fout, k, s, p, bias=False),
            nn.LeakyReLU(0.2),
            nn.Conv2d(fout, fout, k, s, p, bias=False),
            nn.LeakyReLU(0.2),
        )
        self.conv_s = nn.Conv2d(fin, fout, 1, stride=1, padding=0)
        if res:
            self.gamma = nn.Parameter(torch.zeros(1))
        if CLIP_feat:
            self.beta = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, CLIP_feat: torch.Tensor | None = None) -> torch.Tensor:  # noqa: N803
        r = self.conv_r(x)
        if self.learned_shortcut:
            x = self.conv_s(x)
        if self.res:
            x = x + self.gamma * r
        if self.CLIP_feat:
            x = x + self.beta * CLIP_feat
        return x


class NetD(nn.Module):
    """Official ``NetD``: out = tap0 -> DBlocks.0(out, tap1) -> DBlocks.1(out, tap2) -> main.

    [B, 3, 768, 7, 7] -> [B, 512, 7, 7].

    ``ndf``, ``imsize`` and ``ch_size`` are accepted for signature parity and unused (as in the official code).
    ``clip_ch`` (the CLIP visual width) and ``out_ch`` are hard-coded 768 and 512 officially; the smoke config's
    tiny CLIP and CPU budget use narrower ones.
    """

    def __init__(self, ndf: int = 64, imsize: int = 256, ch_size: int = 3, mixed_precision: bool = False,
                 clip_ch: int = 768, out_ch: int = 512) -> None:
        super().__init__()
        self.mixed_precision = mixed_precision
        self.DBlocks = nn.ModuleList([
            DBlock(clip_ch, clip_ch, 3, 1, 1, res=True, CLIP_feat=True),
            DBlock(clip_ch, clip_ch, 3, 1, 1, res=True, CLIP_feat=True),
        ])
        self.main = DBlock(clip_ch, out_ch, 3, 1, 1, res=True, CLIP_feat=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        with _autocast(h, self.mixed_precision):
            out = h[:, 0]
            for idx, block in enumerate(self.DBlocks):
                out = block(out, h[:, idx + 1])
            return self.main(out)


class NetC(nn.Module):
    """Official ``NetC``: tile s to 7x7, concat with D's map -> conv4x4 (1024->128) -> LReLU -> conv4x4 (128->1).

    [B, 512, 7, 7] and [B, 512] -> [B, 1, 1, 1]; both convolutions without bias. ``in_ch`` (NetD's output width)
    is hard-coded 512 officially.
    """

    def __init__(self, ndf: int = 64, cond_dim: int = 512, mixed_precision: bool = False, in_ch: int = 512) -> None:
        super().__init__()
        self.cond_dim, self.mixed_precision = cond_dim, mixed_precision
        self.joint_conv = nn.Sequential(
            nn.Conv2d(in_ch + cond_dim, 128, 4, 1, 0, bias=False),
            nn.LeakyReLU(0.2),
            nn.Conv2d(128, 1, 4, 1, 0, bias=False),
        )

    def forward(self, out: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        with _autocast(out, self.mixed_precision):
            cond = cond.view(-1, self.cond_dim, 1, 1).repeat(1, 1, out.size(-2), out.size(-1))
            return self.joint_conv(torch.cat((out, cond), 1))
