"""GALIP generator (Mate-G): bridge feature through a frozen CLIP-ViT, then DF-GAN style upsampling.

Follows ``tobran/GALIP:code/models/GALIP.py`` (``CLIP_Adapter``, ``NetG``, ``get_G_in_out_chs``) and GALIP
(CVPR 2023, Sec. 3.3: Bridge Feature Predictor, Prompt Predictor, frozen CLIP-ViT, image generator).
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from .blocks import GBlock, MBlock
from .clip_encoders import CLIPMapper

if TYPE_CHECKING:
    from clip.model import CLIP


def get_G_in_out_chs(nf: int, imsize: int) -> list[tuple[int, int]]:  # noqa: N802 (official name)
    """Channel pairs ``nf * min(2**i, 8)`` for i < log2(imsize) - 1, reversed, taken pairwise."""
    layer_num = int(math.log2(imsize)) - 1
    chs = [nf * min(2**i, 8) for i in range(layer_num)][::-1]
    return list(zip(chs[:-1], chs[1:]))


def _autocast(x: torch.Tensor, enabled: bool) -> contextlib.AbstractContextManager:
    return torch.autocast(device_type=x.device.type, enabled=True) if enabled else contextlib.nullcontext()


class CLIPAdapter(nn.Module):
    """The official ``CLIP_Adapter`` (held as ``NetG.mapping``).

    prompts = ``fc_prompt``(c) viewed [B, 8, 768]; F = ``conv_fuse``(FBlocks(x, c)) [B, 768, 7, 7];
    M = ``CLIP_ViT``(F, prompts); output = ``conv``(F + 0.1 * M) [B, G_ch, 7, 7].
    """

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int, G_ch: int, CLIP_ch: int, cond_dim: int,  # noqa: N803
                 k: int, s: int, p: int, map_num: int, clip_model: CLIP) -> None:
        super().__init__()
        self.CLIP_ch = CLIP_ch
        self.FBlocks = nn.ModuleList([MBlock(in_ch, mid_ch, out_ch, cond_dim, k, s, p)])
        self.FBlocks.extend(MBlock(out_ch, mid_ch, out_ch, cond_dim, k, s, p) for _ in range(map_num - 1))
        self.conv_fuse = nn.Conv2d(out_ch, CLIP_ch, 5, 1, 2)
        self.CLIP_ViT = CLIPMapper(clip_model)
        self.conv = nn.Conv2d(CLIP_ch, G_ch, 5, 1, 2)
        self.fc_prompt = nn.Linear(cond_dim, CLIP_ch * 8)

    def forward(self, out: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        prompts = self.fc_prompt(c).view(c.size(0), -1, self.CLIP_ch)
        for block in self.FBlocks:
            out = block(out, c)
        fuse_feat = self.conv_fuse(out)
        map_feat = self.CLIP_ViT(fuse_feat, prompts)
        return self.conv(fuse_feat + 0.1 * map_feat)


class NetG(nn.Module):
    """GALIP generator. ``forward(noise [B, nz], c [B, cond_dim], eval=False)`` -> image [B, 3, 224, 224].

    cond = cat(noise, c) (noise first, 612-d) feeds every fusion block; ``fc_code`` sees the noise only. The last
    G block resizes to ``out_size``, which the official code hard-codes to 224 (so imsize=256 gives 224 px images;
    our smoke config uses imsize = out_size = 64). No tanh: the output is unbounded. Autocast runs only when
    ``mixed_precision`` and not ``eval`` (official). ``clip_model`` is a ``clip.model.CLIP`` whose visual tower the
    mapper shares and freezes; the bridge width is its visual width (768 for ViT-B/32, as officially hard-coded).
    Sample with ``generate`` (no autograd, so the blocks' bitwise-identical in-place fast path runs).
    """

    def __init__(self, ngf: int = 64, nz: int = 100, cond_dim: int = 512, imsize: int = 256, ch_size: int = 3,
                 clip_model: CLIP | None = None, mixed_precision: bool = False, out_size: int = 224) -> None:
        super().__init__()
        if clip_model is None:
            raise TypeError("NetG needs clip_model (a clip.model.CLIP with a ViT-B/32 visual tower)")
        self.ngf, self.mixed_precision = ngf, mixed_precision
        self.code_sz, self.code_ch, self.mid_ch = 7, 64, 32
        self.CLIP_ch = clip_model.visual.conv1.out_channels
        self.fc_code = nn.Linear(nz, self.code_sz * self.code_sz * self.code_ch)
        self.mapping = CLIPAdapter(self.code_ch, self.mid_ch, self.code_ch, ngf * 8, self.CLIP_ch, cond_dim + nz,
                                   3, 1, 1, 4, clip_model)
        pairs = get_G_in_out_chs(ngf, imsize)
        self.GBlocks = nn.ModuleList()
        size = 4
        for idx, (in_ch, out_ch) in enumerate(pairs):
            size = size * 2 if idx < len(pairs) - 1 else out_size
            self.GBlocks.append(GBlock(cond_dim + nz, in_ch, out_ch, size))
        self.to_rgb = nn.Sequential(nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(pairs[-1][1], ch_size, 3, 1, 1))

    def forward(self, noise: torch.Tensor, c: torch.Tensor, eval: bool = False) -> torch.Tensor:  # noqa: A002
        with _autocast(noise, self.mixed_precision and not eval):
            cond = torch.cat((noise, c), dim=1)
            code = self.fc_code(noise).view(noise.size(0), self.code_ch, self.code_sz, self.code_sz)
            out = self.mapping(code, cond)
            for block in self.GBlocks:
                out = block(out, cond)
            return self.to_rgb(out)

    @torch.no_grad()
    def generate(self, noise: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Sampling entry point (``galip sample`` / ``galip bench``): ``forward(noise, c, eval=True)`` without autograd.

        With autograd off the blocks take their in-place fast path (``blocks`` module doc): bitwise the same images
        as the plain forward, about 1.1x (batch 1) to 1.35x (batch 8) faster on CPU. Plain ``no_grad`` rather than
        ``inference_mode``, so that callers may still post-process the images in place.
        """
        return self(noise, c, eval=True)
