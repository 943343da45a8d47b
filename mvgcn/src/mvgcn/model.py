"""MGCN (Yu et al., ACM MM 2023), equation by equation; shapes follow the official ``mgcn.py``."""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn

from mvgcn.config import MGCNConfig
from mvgcn.losses import bpr_loss, embedding_regulariser, info_nce
from mvgcn.sparse import graph_product, transpose_csr

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")


def lightgcn_mean(adj: torch.Tensor, ego: torch.Tensor, n_layers: int,
                  adj_t: torch.Tensor | None = None) -> torch.Tensor:
    """LightGCN: the mean of layers 0..n_layers of ego <- adj @ ego (``adj_t``: A^T for the backward)."""
    layers = [ego]
    for _ in range(n_layers):
        ego = graph_product(adj, ego, adj_t)
        layers.append(ego)
    return torch.stack(layers, dim=1).mean(dim=1)


class BehaviorGuidedPurifier(nn.Module):
    """Eqs. (1)-(2): E_dot = W1 E_m + b1; E_ddot = E_id * sigmoid(W2 E_dot + b2)."""

    def __init__(self, feature_dim: int, dim: int) -> None:
        super().__init__()
        self.project = nn.Linear(feature_dim, dim)
        self.gate = nn.Linear(dim, dim)

    def forward(self, features: torch.Tensor, item_id: torch.Tensor) -> torch.Tensor:
        return item_id * torch.sigmoid(self.gate(self.project(features)))


class BehaviorAwareFuser(nn.Module):
    """Eqs. (11)-(15): modality attention gives the common part E_s = sum_m alpha_m E_m, the specific
    parts E~_m = E_m - E_s are gated by the behaviour preferences P_m = sigmoid(W3_m E_id + b3_m).

    ``fusion='official'`` returns (E_s + sum_m P_m * E~_m) / (|M| + 1) as the official code (which
    produced Table 2); ``fusion='paper'`` returns E_s + (1/|M|) sum_m P_m * E~_m as Eq. (15).
    Without attention, alpha_m = 1/|M| (ablation "w/o attention").
    """

    def __init__(self, dim: int, n_modalities: int, fusion: str = "official", attention: bool = True) -> None:
        super().__init__()
        self.fusion, self.attention = fusion, attention
        self.query = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1, bias=False))
        self.preference = nn.ModuleList(nn.Linear(dim, dim) for _ in range(n_modalities))

    def weights(self, modal: torch.Tensor) -> torch.Tensor:
        """alpha [N, M], softmax over modalities (Eq. 12)."""
        if not self.attention:
            return modal.new_full(modal.shape[:2], 1.0 / modal.shape[1])
        return torch.softmax(self.query(modal).squeeze(-1), dim=1)

    def forward(self, modal: torch.Tensor, behaviour: torch.Tensor) -> torch.Tensor:
        """``modal`` [N, M, d] modality embeddings, ``behaviour`` [N, d] ID embeddings -> E_mul [N, d]."""
        common = (self.weights(modal).unsqueeze(-1) * modal).sum(1)
        specific = modal - common.unsqueeze(1)
        prefer = torch.stack([torch.sigmoid(p(behaviour)) for p in self.preference], dim=1)
        gated = (prefer * specific).sum(1)
        m = modal.shape[1]
        if self.fusion == "official":
            return (common + gated) / (m + 1)
        return common + gated / m


class MGCN(nn.Module):
    """Multi-view GCN: purified modality views on kNN item graphs + LightGCN ID view, fused (Eq. 17)."""

    def __init__(self, config: MGCNConfig, n_users: int, n_items: int, features: dict[str, torch.Tensor],
                 norm_adj: torch.Tensor, user_item: torch.Tensor, item_graphs: dict[str, torch.Tensor],
                 cl_weight: float) -> None:
        super().__init__()
        self.config, self.cl_weight = config, cl_weight
        self.n_users, self.n_items = n_users, n_items
        self.modalities = list(features)
        d = config.embedding_size
        self.user_embedding = nn.Embedding(n_users, d)
        self.item_id_embedding = nn.Embedding(n_items, d)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_id_embedding.weight)
        # raw features are fine-tuned (nn.Embedding.from_pretrained(..., freeze=False) in the official code)
        self.features = nn.ParameterDict({m: nn.Parameter(f.float().clone()) for m, f in features.items()})
        self.purifiers = nn.ModuleDict({m: BehaviorGuidedPurifier(f.shape[1], d) for m, f in features.items()})
        self.fuser = BehaviorAwareFuser(d, len(features), config.fusion, config.use_fuser_attention)
        # graphs as CSR: sparse x dense products (forward and backward) run faster than with COO; each
        # with its transpose for the backward (A_hat is symmetric, A_hat^T = A_hat)
        self.register_buffer("norm_adj", norm_adj.to_sparse_csr(), persistent=False)
        for name, g in {"user_item": user_item, **{f"item_graph_{m}": g for m, g in item_graphs.items()}}.items():
            self.register_buffer(name, g.to_sparse_csr(), persistent=False)
            self.register_buffer(f"{name}_t", transpose_csr(getattr(self, name)), persistent=False)

    def id_view(self) -> torch.Tensor:
        """Eqs. (3)-(5): mean over layers 0..L of LightGCN propagation of [E_user; E_item]."""
        ego = torch.cat([self.user_embedding.weight, self.item_id_embedding.weight])
        return lightgcn_mean(self.norm_adj, ego, self.config.n_ui_layers, adj_t=self.norm_adj)

    def modality_view(self, m: str) -> torch.Tensor:
        """Eqs. (1)-(2), (9)-(10): purified item features on the kNN graph, users from the U-I block."""
        if self.config.use_purifier:
            items = self.purifiers[m](self.features[m], self.item_id_embedding.weight)
        else:  # ablation "w/o purifier": the projected features themselves
            items = self.purifiers[m].project(self.features[m])
        if self.config.use_item_item_view:
            graph, graph_t = getattr(self, f"item_graph_{m}"), getattr(self, f"item_graph_{m}_t")
            for _ in range(self.config.n_layers):
                items = graph_product(graph, items, graph_t)
        users = graph_product(self.user_item, items, self.user_item_t)
        return torch.cat([users, items])

    def forward(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(final [U+I, d] = E_id + E_mul (Eq. 17), E_mul, E_id)."""
        behaviour = self.id_view()
        modal = torch.stack([self.modality_view(m) for m in self.modalities], dim=1)
        fused = self.fuser(modal, behaviour)
        return behaviour + fused, fused, behaviour

    def split(self, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.split(nodes, [self.n_users, self.n_items])

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(users, items) final representations; their dot products are the scores (Eq. 18)."""
        return self.split(self()[0])

    def pre_epoch(self) -> None:
        """Nothing to redo per epoch: the graphs are fixed."""

    def loss(self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eq. (19) on one batch; L_C runs over the batch's users and positive items (official code)."""
        final, fused, behaviour = self()
        u_final, i_final = self.split(final)
        u, p, n = u_final[users], i_final[positives], i_final[negatives]
        cfg = self.config
        losses = {"bpr": bpr_loss(u, p, n),
                  "reg": cfg.reg_weight * embedding_regulariser(u, p, n, cfg.train_batch_size)}
        if cfg.use_self_supervision and self.cl_weight > 0:
            u_fused, i_fused = self.split(fused)
            u_id, i_id = self.split(behaviour)
            losses["cl"] = self.cl_weight * (info_nce(i_fused[positives], i_id[positives], cfg.temperature)
                                             + info_nce(u_fused[users], u_id[users], cfg.temperature))
        losses["total"] = sum(losses.values())
        return losses
