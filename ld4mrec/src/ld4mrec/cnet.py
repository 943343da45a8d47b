"""C-Net and its two conditions.

The paper's figure shows FC -> BD -> BG -> BD -> BG -> FC over the behaviour vector, a time embedding,
a collaborative encoder of the interaction matrix and a GCN over each modality's item features. The
text with the block internals was not available to us, so the blocks below are our reading (README):

- ``BehaviourDenoising`` (BD): h <- tanh(W [h; e_t] + b), DiffRec's time-concatenated layer.
- ``BehaviourGuidance`` (BG): h <- tanh(h + W c_u + b), injection of the condition c_u.
- Collaborative condition: the user's row of a truncated SVD of the training matrix, U_k Sigma_k.
- Modality preference (one GCN hop): e_{u,m} = sum_{i in N_u} f_{i,m} / sqrt(|N_u| |N_i|), projected.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn
from scipy.sparse.linalg import svds


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """DiffRec's sinusoidal embedding [B, dim]: cosines then sines of t * exp(-ln(max_period) k / (dim/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float().unsqueeze(1) * freqs
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    return torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=1) if dim % 2 else emb


def svd_user_factors(train: sp.csr_matrix, rank: int, seed: int) -> torch.Tensor:
    """U_k Sigma_k [users, k] of the binary training matrix (ARPACK, deterministic start vector)."""
    rank = min(rank, min(train.shape) - 1)
    v0 = np.random.default_rng(seed).random(min(train.shape))
    u, s, _ = svds(train.astype(np.float64), k=rank, v0=v0)
    order = np.argsort(-s)
    factors = u[:, order] * s[order]
    signs = np.sign(factors[np.abs(factors).argmax(0), range(rank)])  # fix the sign ambiguity of each factor
    return torch.from_numpy((factors * signs).astype(np.float32))


def degree_normalised(train: sp.csr_matrix) -> sp.csr_matrix:
    """D_u^-1/2 R D_i^-1/2: row u holds 1 / sqrt(|N_u| |N_i|) for each i in N_u."""
    du = np.asarray(train.sum(1)).ravel()
    di = np.asarray(train.sum(0)).ravel()
    inv_u = np.divide(1.0, np.sqrt(du), out=np.zeros_like(du, dtype=np.float64), where=du > 0)
    inv_i = np.divide(1.0, np.sqrt(di), out=np.zeros_like(di, dtype=np.float64), where=di > 0)
    return (sp.diags(inv_u) @ train @ sp.diags(inv_i)).tocsr().astype(np.float32)


class BehaviourDenoising(nn.Module):
    """BD block: h <- tanh(W [h; e_t] + b)."""

    def __init__(self, hidden: int, time_dim: int) -> None:
        super().__init__()
        self.layer = nn.Linear(hidden + time_dim, hidden)

    def forward(self, h: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.layer(torch.cat([h, time], dim=1)))


class BehaviourGuidance(nn.Module):
    """BG block: h <- tanh(h + W c_u + b)."""

    def __init__(self, hidden: int, cond_dim: int) -> None:
        super().__init__()
        self.layer = nn.Linear(cond_dim, hidden)

    def forward(self, h: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return torch.tanh(h if cond is None else h + self.layer(cond))


class CNet(nn.Module):
    """f_theta(x_t, t, c_u) -> predicted x_0 over all items (FC, BD, BG, BD, BG, FC)."""

    def __init__(self, n_items: int, hidden: int, time_dim: int, cond_dim: int, dropout: float) -> None:
        super().__init__()
        self.time_dim = time_dim
        self.time_layer = nn.Linear(time_dim, time_dim)
        self.drop = nn.Dropout(dropout)
        self.encode = nn.Linear(n_items, hidden)
        self.blocks = nn.ModuleList([BehaviourDenoising(hidden, time_dim), BehaviourGuidance(hidden, cond_dim),
                                     BehaviourDenoising(hidden, time_dim), BehaviourGuidance(hidden, cond_dim)])
        self.decode = nn.Linear(hidden, n_items)
        for layer in self.modules():  # DiffRec's init: N(0, sqrt(2 / (fan_in + fan_out))), bias N(0, 1e-3)
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, 0.0, math.sqrt(2.0 / sum(layer.weight.shape)))
                nn.init.normal_(layer.bias, 0.0, 1e-3)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        time = self.time_layer(timestep_embedding(t, self.time_dim))
        h = self.encode(self.drop(x))
        for block in self.blocks:
            h = block(h, time) if isinstance(block, BehaviourDenoising) else block(h, cond)
        return self.decode(h)


class Conditions(nn.Module):
    """c_u = [collaborative (SVD) ; projected modality preference per modality] for a batch of users."""

    def __init__(self, train: sp.csr_matrix, features: dict[str, np.ndarray], cond_dim: int, svd_rank: int,
                 seed: int, collaborative: bool = True, modality: bool = True) -> None:
        super().__init__()
        self.collaborative, self.modality = collaborative, modality
        self.norm = degree_normalised(train)
        svd = svd_user_factors(train, svd_rank, seed) if collaborative else torch.zeros(0, 0)
        self.register_buffer("svd", svd, persistent=False)
        self.collab_proj = nn.Linear(self.svd.shape[1], cond_dim) if collaborative else None
        self.names = list(features) if modality else []
        for m in self.names:
            self.register_buffer(f"feat_{m}", torch.from_numpy(features[m]), persistent=False)
        self.modal_proj = nn.ModuleDict({m: nn.Linear(features[m].shape[1], cond_dim) for m in self.names})
        self.dim = cond_dim * (int(collaborative) + len(self.names))

    def forward(self, users: torch.Tensor) -> torch.Tensor | None:
        parts = []
        if self.collaborative:
            parts.append(self.collab_proj(self.svd[users]))
        if self.names:
            rows = self.norm[users.cpu().numpy().copy()].tocoo()
            index = torch.from_numpy(np.stack([rows.row, rows.col]).astype(np.int64))
            agg = torch.sparse_coo_tensor(index, torch.from_numpy(rows.data), rows.shape,
                                          check_invariants=True).to(users.device)
            for m in self.names:
                parts.append(self.modal_proj[m](torch.sparse.mm(agg, getattr(self, f"feat_{m}"))))
        return torch.cat(parts, dim=1) if parts else None
