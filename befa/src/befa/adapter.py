"""The BeFA adapter (``fqldom/BeFA:src/models/LATTICE_BeFA.py``), one per modality.

Decoupling (up-projection d -> t*d), behaviour-guided filtering (ReLU, dropout, tanh, t*d -> t*d,
ReLU, dropout) and reconstruction (t*d -> d, sigmoid): the official MLP with ``layer_times`` t and
``dropout_rate`` r. It is inserted right after a base model's modality projection and trained end to
end under the base model's behavioural loss, which is what makes the filtering behaviour-driven.
"""

from __future__ import annotations

import torch.nn as nn


class BeFA(nn.Sequential):
    def __init__(self, dim: int = 64, layer_times: int = 1, dropout_rate: float = 0.1) -> None:
        wide = dim * layer_times
        super().__init__(
            nn.Linear(dim, wide), nn.ReLU(), nn.Dropout(dropout_rate), nn.Tanh(),
            nn.Linear(wide, wide), nn.ReLU(), nn.Dropout(dropout_rate),
            nn.Linear(wide, dim), nn.Sigmoid(),
        )


def adapter_parameters(dim: int, layer_times: int) -> int:
    """(d*td + td) + (td*td + td) + (td*d + d) parameters per modality."""
    td = dim * layer_times
    return (dim * td + td) + (td * td + td) + (td * dim + dim)


def adapters(modalities, dim: int, enabled: bool, layer_times: int, dropout_rate: float) -> nn.ModuleDict:
    """One BeFA per modality when enabled, else identities (the exact base model)."""
    return nn.ModuleDict({m: BeFA(dim, layer_times, dropout_rate) if enabled else nn.Identity() for m in modalities})
