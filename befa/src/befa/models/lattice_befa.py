"""The official BeFA model, ``LATTICE_BeFA`` (``fqldom/BeFA:src/models/LATTICE_BeFA.py``), as its code computes it.

Despite its name it is not MMRec's LATTICE (no learned item graph, no lambda mixing, no modal weights): it is
MGCN's two views (``mvgcn``) without MGCN's behaviour-aware fuser and without its InfoNCE term. With
m in {image, text}, e_m the fine-tuned raw features (``nn.Embedding.from_pretrained(..., freeze=False)``):

- item modality embeddings: E_m = E_id * BeFA_m(W_m e_m + b_m) (``image_trs``/``text_trs``, then ``BeFA_v``/``BeFA_t``);
- item-item view: ``n_layers`` products with S_m, the fixed top-k cosine graph of the raw features,
  D^-1/2 S D^-1/2 (``build_knn_normalized_graph(..., norm_type='sym')``, MGCN's graph); users: R E_m with R the
  user-item block of the normalised bipartite adjacency;
- user-item view: LightGCN, the mean of layers 0..``n_ui_layers`` of [E_user; E_id] under D^-1/2 A D^-1/2
  (no self-loops; ``get_adj_mat``);
- fusion: side = (view_image + view_text) / 2, final = user-item view + side;
- loss (``calculate_loss``): -mean log sigmoid(s_ui - s_uj) + reg_weight * 0.5 (||u||^2 + ||i||^2 + ||j||^2) / batch
  size (the configured one) on the final batch embeddings. ``cl_loss`` is read by the official code but unused.

Initialisation, in the official creation order so one seed gives the official weights: ``user_embedding`` and
``item_id_embedding`` (xavier uniform), ``image_trs``, ``text_trs`` (PyTorch's Linear default), ``query_common``,
``BeFA_v``, ``BeFA_t``. ``query_common`` (Linear(d, d), Tanh, Linear(d, 1, no bias)) is created by the official code
and never used in its forward; it is kept here so the adapters draw the same random numbers, and it receives no
gradient. With ``config.adapter`` off the adapters are identities: E_m = E_id * (W_m e_m + b_m) (the official code has
no such switch; this is the "base" row of ``befa compare``). Both image and text features are required, as in the
official forward.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from befa.adapter import adapters
from befa.config import BeFAConfig
from common.data.mmrec import MMRecData
from mvgcn.graphs import cached_knn_graph, knn_cosine_graph, user_item_graph
from mvgcn.losses import bpr_loss, embedding_regulariser
from mvgcn.model import lightgcn_mean

MODALITIES = {"image": "image_feat", "text": "text_feat"}


class LatticeBeFA(nn.Module):
    """fqldom/BeFA's only model: MGCN's purifier (BeFA as the gate) and two views, mean fusion, BPR + reg."""

    def __init__(self, config: BeFAConfig, data: MMRecData) -> None:
        super().__init__()
        missing = [key for key in MODALITIES.values() if key not in data.features]
        if missing:
            raise ValueError(f"lattice_befa needs image_feat and text_feat (missing {', '.join(missing)})")
        self.config = config
        self.n_users, self.n_items = data.n_users, data.n_items
        self.modalities = list(MODALITIES)
        d = config.embedding_size
        self.user_embedding = nn.Embedding(self.n_users, d)
        self.item_id_embedding = nn.Embedding(self.n_items, d)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_id_embedding.weight)
        self.features = nn.ParameterDict({m: nn.Parameter(torch.from_numpy(data.features[k]).float().clone())
                                          for m, k in MODALITIES.items()})
        self.trs = nn.ModuleDict({m: nn.Linear(self.features[m].shape[1], d) for m in self.modalities})
        self.query_common = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1, bias=False))
        self.adapters = adapters(self.modalities, d, config.adapter, config.layer_times, config.dropout_rate)
        norm_adj, user_item = user_item_graph(data.splits["train"])
        self.register_buffer("norm_adj", norm_adj.to_sparse_csr(), persistent=False)
        self.register_buffer("user_item", user_item.to_sparse_csr(), persistent=False)
        for m, k in MODALITIES.items():
            graph = (cached_knn_graph(data.features[k], config.knn_k, config.cache_dir, f"{config.dataset}_{m}")
                     if config.cache_dir else knn_cosine_graph(torch.from_numpy(data.features[k]), config.knn_k))
            self.register_buffer(f"item_graph_{m}", graph.to_sparse_csr(), persistent=False)

    def projected(self, m: str) -> torch.Tensor:
        """BeFA_m(W_m e_m + b_m), before the gate by the item ID embedding."""
        return self.adapters[m](self.trs[m](self.features[m]))

    def modality_view(self, m: str) -> torch.Tensor:
        """[users; items] of modality m: E_id * BeFA_m(...) on the item graph, users through R."""
        items = self.item_id_embedding.weight * self.projected(m)
        graph = getattr(self, f"item_graph_{m}")
        for _ in range(self.config.n_layers):
            items = torch.sparse.mm(graph, items)
        return torch.cat([torch.sparse.mm(self.user_item, items), items])

    def id_view(self) -> torch.Tensor:
        """LightGCN: the mean of layers 0..L of [E_user; E_id] under the normalised bipartite adjacency."""
        ego = torch.cat([self.user_embedding.weight, self.item_id_embedding.weight])
        return lightgcn_mean(self.norm_adj, ego, self.config.n_ui_layers)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(users, items): user-item view + (image view + text view) / 2."""
        side = sum(self.modality_view(m) for m in self.modalities) / len(self.modalities)
        return torch.split(self.id_view() + side, [self.n_users, self.n_items])

    def pre_epoch(self) -> None:
        """Nothing per epoch (``pre_epoch_processing`` is empty): the graphs are fixed."""

    def loss(self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> dict[str, torch.Tensor]:
        """``calculate_loss``: BPR + reg_weight * 0.5 ||final batch embeddings||^2 / train_batch_size."""
        u_all, i_all = self()
        u, p, n = u_all[users], i_all[positives], i_all[negatives]
        parts = {"bpr": bpr_loss(u, p, n),
                 "reg": self.config.reg_weight * embedding_regulariser(u, p, n, self.config.train_batch_size)}
        parts["total"] = parts["bpr"] + parts["reg"]
        return parts

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``full_sort_predict``: the final embeddings (the caller sets eval mode, which turns dropout off)."""
        return self()
