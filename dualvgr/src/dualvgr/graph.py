"""The graph-reasoning parts of one DualVGR unit (paper Sec. III-B; official ``model/utils.py``,
``model/GraphNN.py``, ``model/Attention.py``).

- ``WordAttention`` (official ``QueryAttn``): beta = softmax_l(w^T l2norm(W_e U_l + b_e) + b) over all
  padded positions, then masked beyond the question length and renormalised with +1e-5 in the
  denominator (so the weights sum to slightly under 1, as the official code); the cue c_t = sum_l beta_l w_l
  pools the 300-d word embeddings, not the LSTM states.
- ``QueryPunishment`` (``QueryPunish``): s_n = sigmoid(x_n . (W c_t + b)), one scalar per clip. The
  official code computes a temperature sqrt(300 * 768) and never applies it; so do we (none).
- ``PunishedGAT`` (``punishGAT``): 4 heads of 192, dropout 0.15 on the input, the attention matrix and
  the concatenated output, LeakyReLU 0.01, ELU per head. Per head g_i = W x_i + b,
  e_ij = LReLU(a^T [g_i; g_j] + b_a), alpha = Drop(softmax_j e), h'_i = ELU(sum_j alpha_ij s_j g_j):
  the punishment scales the messages g_j, not the attention logits and not the node features.
  The graph is complete with self-loops (the official adjacency is all-ones + I, row-normalised, and
  only its non-zero pattern is used), so no mask is applied and any clip count works.
  a^T [g_i; g_j] is computed as a_src.g_i + a_dst.g_j, the same function without the [N*N, 384] tensor
  the official code materialises; the 4 heads' W are one Linear whose row block h is head h.
- ``ViewAttention`` (``AttentionSFGCN``, from AM-GCN): softmax over the views of v^T tanh(W z + b) per node.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class WordAttention(nn.Module):
    def __init__(self, module_dim: int = 768):
        super().__init__()
        self.enhance = nn.Linear(module_dim, module_dim)
        self.score = nn.Linear(module_dim, 1)

    def forward(self, words: torch.Tensor, tokens: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """words [B, L, 300], tokens U [B, L, 768], mask [B, L] (1 = a real word) -> cue [B, 300], beta [B, L]."""
        beta = self.score(F.normalize(self.enhance(tokens), dim=-1)).squeeze(-1).softmax(dim=-1) * mask
        beta = beta / (beta.sum(dim=1, keepdim=True) + 1e-5)
        return torch.bmm(beta.unsqueeze(1), words).squeeze(1), beta


class QueryPunishment(nn.Module):
    def __init__(self, word_dim: int = 300, module_dim: int = 768):
        super().__init__()
        self.query = nn.Linear(word_dim, module_dim)

    def forward(self, cue: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
        """cue [B, 300], nodes [B, N, 768] -> punishment scores in (0, 1), [B, N, 1]."""
        return torch.sigmoid(torch.bmm(nodes, self.query(cue).unsqueeze(2)))


class PunishedGAT(nn.Module):
    def __init__(self, dim: int = 768, heads: int = 4, dropout: float = 0.15, slope: float = 0.01):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by {heads} heads")
        self.heads, self.head_dim, self.dropout, self.slope = heads, dim // heads, dropout, slope
        self.proj = nn.Linear(dim, dim)
        self.attn_src = nn.Parameter(torch.empty(heads, self.head_dim))
        self.attn_dst = nn.Parameter(torch.empty(heads, self.head_dim))
        self.attn_bias = nn.Parameter(torch.zeros(heads))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official ``init_modules`` pass: xavier_uniform (gain 1) on each head's W (fan 768 -> 192) and
        on each head's a (fan 384 -> 1), zero biases; it overrides the GAT's own gain 1.414."""
        w_bound = math.sqrt(6.0 / (self.proj.in_features + self.head_dim))
        a_bound = math.sqrt(6.0 / (2 * self.head_dim + 1))
        nn.init.uniform_(self.proj.weight, -w_bound, w_bound)
        nn.init.zeros_(self.proj.bias)
        nn.init.uniform_(self.attn_src, -a_bound, a_bound)
        nn.init.uniform_(self.attn_dst, -a_bound, a_bound)
        nn.init.zeros_(self.attn_bias)

    def attention(self, g: torch.Tensor) -> torch.Tensor:
        """Per-head logits e_ij = LReLU(a_src.g_i + a_dst.g_j + b), g [B, H, N, d] -> [B, H, N, N]."""
        src = torch.einsum("bhnd,hd->bhn", g, self.attn_src)
        dst = torch.einsum("bhnd,hd->bhn", g, self.attn_dst)
        return F.leaky_relu(src.unsqueeze(-1) + dst.unsqueeze(-2) + self.attn_bias.view(1, -1, 1, 1), self.slope)

    def forward(self, x: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """x [B, N, 768], scores [B, N, 1] -> [B, N, 768] (heads concatenated)."""
        b, n, dim = x.shape
        x = F.dropout(x, self.dropout, self.training)
        g = self.proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        alpha = F.dropout(self.attention(g).softmax(dim=-1), self.dropout, self.training)
        h = F.elu(alpha @ (g * scores.unsqueeze(1)))
        return F.dropout(h.transpose(1, 2).reshape(b, n, dim), self.dropout, self.training)


class ViewAttention(nn.Module):
    def __init__(self, dim: int = 768):
        """Score MLP dim -> dim -> 1 (official ``AttentionSFGCN(module_dim, module_dim)``)."""
        super().__init__()
        self.project = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1, bias=False))

    def forward(self, views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """views [B, V, N, D] -> fused [B, N, D], weights [B, V, N, 1] (sum to 1 over V)."""
        weights = self.project(views).softmax(dim=1)
        return (weights * views).sum(dim=1), weights
