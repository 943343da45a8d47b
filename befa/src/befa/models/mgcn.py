"""MGCN (the ``mvgcn`` package) as a BeFA base model.

With the adapter on, BeFA takes the place of the purifier's gate: E_i,m = E_i,id * BeFA(W1 e_i,m + b1),
as the official ``LATTICE_BeFA`` (which is MGCN's pipeline) does; with it off this is MGCN unchanged.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from befa.adapter import adapters
from befa.config import BeFAConfig
from common.data.mmrec import MMRecData
from mvgcn.config import MGCNConfig
from mvgcn.train import build_model


class AdaptedPurifier(nn.Module):
    """E_id * BeFA(project(features)): the purifier with BeFA as its behaviour-driven gate."""

    def __init__(self, project: nn.Linear, adapter: nn.Module) -> None:
        super().__init__()
        self.project, self.adapter = project, adapter

    def forward(self, features: torch.Tensor, item_id: torch.Tensor) -> torch.Tensor:
        return item_id * self.adapter(self.project(features))


class MGCNBase(nn.Module):
    def __init__(self, config: BeFAConfig, data: MMRecData) -> None:
        super().__init__()
        self.mgcn_config = MGCNConfig(
            dataset=config.dataset, data=config.data, cache_dir=config.cache_dir, embedding_size=config.embedding_size,
            n_ui_layers=config.n_ui_layers, n_layers=config.n_layers, knn_k=config.knn_k, cl_loss=config.cl_loss,
            reg_weight=config.reg_weight, train_batch_size=config.train_batch_size, device=config.device)
        self.model = build_model(self.mgcn_config, data, config.cl_loss)
        self.adapters = adapters(self.model.modalities, config.embedding_size, config.adapter, config.layer_times,
                                 config.dropout_rate)
        if config.adapter:
            for m in self.model.modalities:
                self.model.purifiers[m] = AdaptedPurifier(self.model.purifiers[m].project, self.adapters[m])

    def pre_epoch(self) -> None:
        pass

    def loss(self, users, positives, negatives) -> dict[str, torch.Tensor]:
        return self.model.loss(users, positives, negatives)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.embeddings()
