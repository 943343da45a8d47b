"""CWP, the combination-weights predictor ("Comp-Pred") of DE-Net (Tao et al., AAAI 2023, Sec. 3).

Follows ``tobran/DE-Net:code/models/model.py`` (``CWP``). From the bottleneck feature v [B, 8ngf, 4, 4] and the
sentence code t [B, 256] it builds the joint code ti [B, 1024]:
img = img_enc(v) flattened to 256 values, txt = txt_enc(t), (a | b) = fuse(img | txt) (two 256-halves),
ti = LeakyReLU_0.2(fc.linear1(a - b | a * b | img | txt)). Each DEBlock maps ti to its per-channel combination
weights. The 256-wide halves are hard-coded upstream, so ``out_ch`` must be 256.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .blocks import COND_DIM, MLP, SLOPE, ConvBlock


class CWP(nn.Module):
    """Combination-weights predictor producing ti [B, 1024] from the bottleneck image feature and the sentence."""

    def __init__(self, in_ch: int, out_ch: int = COND_DIM) -> None:
        super().__init__()
        if out_ch != COND_DIM:
            raise ValueError(f"CWP hard-codes {COND_DIM}-d codes (official code); got out_ch={out_ch}")
        self.img_enc = ConvBlock(in_ch, out_ch)
        self.txt_enc = MLP(out_ch, out_ch)
        self.fuse = MLP(COND_DIM * 2, COND_DIM * 2)
        self.fc = nn.Sequential(OrderedDict([
            ("linear1", nn.Linear(COND_DIM * 4, COND_DIM * 4)),
            ("relu1", nn.LeakyReLU(SLOPE)),
        ]))

    def forward(self, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        img_emb = self.img_enc(v).view(v.size(0), -1)
        txt_emb = self.txt_enc(t)
        joint = self.fuse(torch.cat((img_emb, txt_emb), dim=1))
        a, b = joint[:, :COND_DIM], joint[:, COND_DIM:]
        return self.fc(torch.cat((a - b, a * b, img_emb, txt_emb), dim=1))
