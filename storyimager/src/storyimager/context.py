"""Contextual Feature Extractor (CFE) and the context prior it adds at the UNet input (spec A2).

The CFE reads the whole storyline: each caption's pooled CLIP embedding e_k (the EOS token's state), plus a
frame-position embedding p_k and a role embedding (target / given frame), then P learnable query tokens;
a pre-norm Transformer encoder runs over the K + P tokens. Its outputs are

- the story tokens S [B, K + P, d], the keys/values of the story branch of every Frame-Story Cross Attention;
- a per-frame context prior [B, K, C0] (a zero-initialised linear map of the frame tokens), added to the UNet's
  ``conv_in`` features over each frame's cells (the paper's figure combines a CFE prior with the latent before
  the UNet; the exact operator is not readable here, so this form is our choice; ``context_prior: false``
  turns it off).

Sizes (layers, heads, P) are ours: the paper's values are not readable here (spec A9).
"""

from __future__ import annotations

import torch
from torch import nn

from storyimager.layout import StoryLayout, frame_map


class ContextualFeatureExtractor(nn.Module):
    """[B, K, d] pooled caption embeddings + [B, K] target mask -> (S [B, K + P, d], prior [B, K, C0])."""

    def __init__(self, dim: int, frames: int, prior_channels: int, layers: int = 2, heads: int = 8,
                 queries: int = 4):
        super().__init__()
        if dim % heads:
            raise ValueError(f"CFE width {dim} is not divisible by {heads} heads")
        self.position = nn.Parameter(torch.randn(frames, dim) * 0.02)
        self.role = nn.Embedding(2, dim)  # 0 = given frame, 1 = target frame
        nn.init.normal_(self.role.weight, std=0.02)
        self.queries = nn.Parameter(torch.randn(queries, dim) * 0.02)
        block = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.prior = nn.Linear(dim, prior_channels)
        nn.init.zeros_(self.prior.weight)
        nn.init.zeros_(self.prior.bias)

    def forward(self, pooled: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, k, _ = pooled.shape
        x = pooled + self.position[:k] + self.role(targets.long())
        x = torch.cat([x, self.queries.expand(b, -1, -1)], dim=1)
        s = self.norm(self.encoder(x))
        return s, self.prior(s[:, :k])


class PriorConvIn(nn.Module):
    """The UNet's ``conv_in`` plus the layout's per-frame prior [B, K, C0] spread over each frame's cells."""

    def __init__(self, conv: nn.Conv2d, layout: StoryLayout):
        super().__init__()
        self.conv, self.layout = conv, layout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        prior = self.layout.prior
        if prior is None:
            return y
        return y + frame_map(prior, y.shape[-2], y.shape[-1] // prior.shape[1])
