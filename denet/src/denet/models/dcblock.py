"""DCBlock: the spatial-wise branch of DEBlock (Tao et al., AAAI 2023, Sec. 3; ``code/models/model.py``).

The structure feature ``mask`` (from the U-Net's ``UNetYp`` path) goes through the text-conditioned ``cConv2d``
(3x3, pad 1, C -> 8); two bias-free 3x3 convs (8 -> 1) turn it into a spatial weight map A and bias map B, and the
block returns ``A * img + B`` (maps broadcast over channels).
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import COND_DIM, cConv2d


class DCBlock(nn.Module):
    """Dynamic spatial modulation ``conv_weight(h) * img + conv_bias(h)``, ``h = conv(mask, c)``."""

    def __init__(self, in_ch: int, cond_dim: int = COND_DIM) -> None:
        super().__init__()
        self.conv = cConv2d(in_ch, 8, 3, 1, 1, cond_dim=cond_dim)
        self.conv_weight = nn.Conv2d(8, 1, 3, 1, 1, bias=False)
        self.conv_bias = nn.Conv2d(8, 1, 3, 1, 1, bias=False)

    def forward(self, img: torch.Tensor, mask: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.conv(mask, c)
        return self.conv_weight(h) * img + self.conv_bias(h)
