"""BM3 (Zhou et al., "Bootstrap Latent Representations for Multi-modal Recommendation", WWW'23) as MMRec
implements it (``enoche/MMRec:src/models/bm3.py``, ``src/configs/model/BM3.yaml``), plus BeFA.

Notation: A_hat = D^-1/2 A D^-1/2 on the bipartite training graph (D the degrees + 1e-7, no self-loops),
g the predictor Linear(d, d), p = ``bm3_dropout``, cos the cosine similarity (eps 1e-8).

- encoder (``forward``): LightGCN, the mean over layers 0..L (L = ``n_ui_layers``, MMRec's ``n_layers``) of
  E^(l+1) = A_hat E^(l), E^(0) = [user_embedding; item_id_embedding]; users h_u = that mean, items
  h_i = that mean + item_id_embedding.
- modality online views: z_i^m = W_m f_i^m + b_m (``image_trs``/``text_trs`` of the fine-tuned raw feature
  tables, MMRec ``from_pretrained(..., freeze=False)``; the BeFA adapter acts right here, see below).
- targets (no gradient): dropout(h_u, p), dropout(h_i, p), dropout(z^t, p), dropout(z^v, p), each drawn on
  the full table in this order (MMRec's order, so one seed gives MMRec's masks); F.dropout is applied
  whatever the module's mode (MMRec calls it without ``training``).
- loss, for the batch's (u, i) training pairs (no negatives; the trainer's are ignored):
  [1 - mean cos(g(h_u), h~_i)] + [1 - mean cos(g(h_i), h~_u)]
  + reg_weight * (||h_U||_F + ||h_I||_F) / n_items (MMRec ``EmbLoss`` on the full tables of users and items)
  + cl_weight * sum_m ([1 - mean cos(g(z_i^m), h~_i)] + [1 - mean cos(g(z_i^m), z~_i^m)]).
- scores (``full_sort_predict``): <g(h_u), g(h_i)>.

Parameters are created in MMRec's order (same draws from the global RNG): the two ID tables (nn.Embedding,
then xavier_uniform), the predictor (nn.Linear, weight re-drawn xavier_normal), then per modality (image
first) the feature table and the Linear (weight re-drawn xavier_normal, default bias).

BeFA (spec 4.2): ``adapters[m]`` is applied to the projected modality embeddings, z_i^m = BeFA_m(W_m f_i^m + b_m),
so it feeds both the online view g(z_i^m) and its dropout target. The scores do not read z^m: the adapters act
only through the gradients the modality terms send to the shared predictor g (with ``bm3_cl_weight`` = 0 they
have no effect). With ``config.adapter`` off they are identities and this is MMRec's BM3.

As MMRec, the projections (and adapters) run over all items and are then indexed by the batch, so the dropout
masks have MMRec's shapes; the graph is a sparse CSR tensor.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from befa.adapter import adapters
from befa.config import BeFAConfig
from befa.models.freedom import bipartite_edge_values, lightgcn, symmetric_adjacency
from befa.models.lgmrec import binary_interactions
from befa.models.vbpr import mmrec_emb_loss
from common.data.mmrec import MMRecData

MODALITY_FILES = {"image": "image_feat", "text": "text_feat"}  # MMRec's v_feat, t_feat


def negative_cosine(online: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - mean_k cos(online_k, target_k) (MMRec ``1 - cosine_similarity(..., dim=-1).mean()``)."""
    return 1 - F.cosine_similarity(online, target.detach(), dim=-1).mean()


class BM3(nn.Module):
    """MMRec BM3 with BeFA adapters (``"image"``, ``"text"``) on the projected modality embeddings."""

    def __init__(self, config: BeFAConfig, data: MMRecData) -> None:
        super().__init__()
        d, device = config.embedding_size, torch.device(config.device)
        self.n_users, self.n_items = data.n_users, data.n_items
        self.n_layers, self.reg_weight = config.n_ui_layers, config.reg_weight
        self.cl_weight, self.dropout = config.bm3_cl_weight, config.bm3_dropout
        raw = {m: data.features[f] for m, f in MODALITY_FILES.items() if f in data.features}
        if not raw:
            raise ValueError("BM3 needs image_feat and/or text_feat")
        self.modalities = list(raw)

        rows, cols = binary_interactions(data.splits["train"])
        norm_adj = symmetric_adjacency(rows, cols, bipartite_edge_values(rows, cols, self.n_users, self.n_items),
                                       self.n_users, self.n_items)
        self.register_buffer("norm_adj", norm_adj.to_sparse_csr(), persistent=False)

        # parameters in MMRec's order (same draws from the global RNG)
        self.user_embedding = nn.Embedding(self.n_users, d)
        self.item_id_embedding = nn.Embedding(self.n_items, d)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_id_embedding.weight)
        self.predictor = nn.Linear(d, d)
        nn.init.xavier_normal_(self.predictor.weight)
        for m, f in raw.items():  # a copy of the features: the table is trained
            setattr(self, f"{m}_embedding", nn.Embedding.from_pretrained(torch.tensor(f, dtype=torch.float32),
                                                                         freeze=False))
            setattr(self, f"{m}_trs", nn.Linear(f.shape[1], d))
            nn.init.xavier_normal_(getattr(self, f"{m}_trs").weight)
        # built last so that the base parameters draw the same random numbers with the adapter on or off
        self.adapters = adapters(self.modalities, d, config.adapter, config.layer_times, config.dropout_rate)
        self.to(device)

    def pre_epoch(self) -> None:
        """Nothing to do per epoch."""

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """MMRec ``forward``: (h_U, h_I) = LightGCN users, LightGCN items + item ID embeddings."""
        ego = torch.cat([self.user_embedding.weight, self.item_id_embedding.weight])
        users, items = torch.split(lightgcn(self.norm_adj, ego, self.n_layers), [self.n_users, self.n_items])
        return users, items + self.item_id_embedding.weight

    def modality_embeddings(self, m: str) -> torch.Tensor:
        """z^m = BeFA_m(W_m f^m + b_m) for all items (the adapter's insertion point)."""
        return self.adapters[m](getattr(self, f"{m}_trs")(getattr(self, f"{m}_embedding").weight))

    def loss(self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> dict[str, torch.Tensor]:
        """MMRec ``calculate_loss`` on the (user, positive) pairs; ``negatives`` are unused (BM3 samples none).

        Parts are the weighted terms: ``ui`` (both bootstrap terms), ``reg``, ``cl`` (all modality terms).
        """
        u_all, i_all = self()
        online = {m: self.modality_embeddings(m) for m in ("text", "image") if m in self.modalities}  # MMRec: t, v
        with torch.no_grad():
            u_target, i_target = F.dropout(u_all, self.dropout), F.dropout(i_all, self.dropout)
            targets = {m: F.dropout(z, self.dropout) for m, z in online.items()}
        u_online, i_online = self.predictor(u_all)[users], self.predictor(i_all)[positives]
        i_target, u_target = i_target[positives], u_target[users]
        to_item, to_self = {}, {}
        for m, z in online.items():
            z = self.predictor(z)[positives]
            to_item[m], to_self[m] = negative_cosine(z, i_target), negative_cosine(z, targets[m][positives])
        # MMRec's sum order: loss_t + loss_v + loss_tv + loss_vt (a missing modality contributes 0.0)
        cl = (to_item.get("text", 0.0) + to_item.get("image", 0.0) + to_self.get("text", 0.0)
              + to_self.get("image", 0.0))
        parts = {"ui": negative_cosine(u_online, i_target) + negative_cosine(i_online, u_target),
                 "reg": self.reg_weight * mmrec_emb_loss(u_all, i_all),
                 "cl": self.cl_weight * cl}
        parts["total"] = parts["ui"] + parts["reg"] + parts["cl"]
        return parts

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(g(h_U), g(h_I)): MMRec ``full_sort_predict`` scores are their dot products."""
        users, items = self()
        return self.predictor(users), self.predictor(items)
