"""LGMRec (Guo et al., "LGMRec: Local and Global Graph Learning for Multimodal Recommendation", AAAI'24) as
MMRec implements it (``enoche/MMRec:src/models/lgmrec.py``, ``src/configs/model/LGMRec.yaml``), plus BeFA.

Notation: R the binary U x I training matrix, A = [[0, R], [R^T, 0]], A_hat = D^-1/2 A D^-1/2 with D the node
degrees + 1e-7 (no self-loops), f^m the frozen raw features of modality m in (image, text), tau = 0.2.

- collaborative graph embedding (``cge``, ``cf_model: lightgcn``): E_c = mean over layers 0..``n_ui_layers``
  of E^(l+1) = A_hat E^(l), E^(0) = [user_embedding; item_id_embedding].
- local modality graph embedding (``mge``): items X_m = f^m W_m (``item_image_trs``/``item_text_trs``,
  d_m x d, no bias; the BeFA adapter acts right here, see below), users the mean of their training items'
  X_m (R X_m / (deg_u + 1e-7)), then ``n_mm_layers`` plain propagations E <- A_hat E, the last layer kept.
- global hypergraph embedding: item-hyperedge logits H_i^m = f^m V_m (``v_hyper``/``t_hyper``, d_m x
  ``hyper_num``), user-hyperedge logits H_u^m = R H_i^m; both through ``gumbel_softmax(., tau, dim=1)``, then
  dropout with p = 1 - ``keep_rate``. ``n_hyper_layer`` times: Lambda = H_i^T Z, Z <- H_i Lambda,
  Z_u = H_u Lambda, starting from Z = the items of E_c.
- fusion: E = E_c + (norm(E_v) + norm(E_t)) + ``alpha`` * norm([Z_u^v; Z^v] + [Z_u^t; Z^t]), norm = row-wise L2.
- loss: BPR -mean logsigmoid(<u, i+> - <u, j->) on E, plus ``cl_weight`` * (ssl(Z_u^v[u], Z_u^t[u], Z_u^t) +
  ssl(Z^v[i+], Z^t[i+], Z^t)) with ssl(a, b, all) = -sum_k log(exp(cos(a_k, b_k)/tau) /
  sum_j exp(cos(a_k, all_j)/tau)) (a sum over the batch, not a mean), plus ``reg_weight`` *
  (||u|| + ||i+|| + ||j-||) / B (Frobenius norms of the batch's final embeddings, not squared).
- scores (``full_sort_predict``): dot products of E, recomputed with fresh Gumbel noise (MMRec draws it at
  evaluation too; only the hypergraph dropout is off in eval mode).

Random draws, in MMRec's order (so one seed gives MMRec's numbers): Gumbel noise for H_i^v, H_u^v, H_i^t, H_u^t,
then the dropout masks of H_i^v, H_u^v, H_i^t, H_u^t (BeFA's own dropout, when on, falls between the two).
Parameters are created in MMRec's order: the two ID tables (nn.Embedding, then xavier_uniform), then per
modality (image first) W_m and V_m, both xavier_uniform.

BeFA (spec 4.2): ``adapters[m]`` is applied to f^m W_m inside the local encoder only: X_m = BeFA_m(f^m W_m). The
hyperedge logits f^m V_m read the raw features and are unchanged. With ``config.adapter`` off the adapters are
identities and this is MMRec's LGMRec.

Engineering differences from MMRec (the same numbers): A_hat and R are sparse CSR tensors, and the frozen raw
features are non-persistent buffers rather than frozen ``nn.Embedding`` weights (kept out of checkpoints).
MMRec needs both modalities (with one its ``forward`` references undefined hyperedge embeddings); so does this.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn
import torch.nn.functional as F

from befa.adapter import adapters
from befa.config import BeFAConfig
from befa.models.freedom import bipartite_edge_values, bpr_loss, lightgcn, symmetric_adjacency
from befa.models.vbpr import mmrec_emb_loss
from common.data.mmrec import MMRecData

TAU = 0.2  # MMRec's fixed temperature of the Gumbel softmax and of the hypergraph contrastive loss
MODALITIES = {"image": ("image_feat", "v_hyper", "item_image_trs"), "text": ("text_feat", "t_hyper", "item_text_trs")}


def binary_interactions(train: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, cols) of the training interactions, each (user, item) once (MMRec's A has value 1 per edge)."""
    coo = train.tocoo()
    return torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64))


def hypergraph_propagation(item_hyper: torch.Tensor, user_hyper: torch.Tensor, items: torch.Tensor,
                           n_layers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """MMRec ``HGNNLayer``: L times Lambda = H_i^T Z, Z <- H_i Lambda, Z_u = H_u Lambda; returns (Z_u, Z)."""
    z = items
    for _ in range(n_layers):
        latent = item_hyper.T @ z
        z = item_hyper @ latent
        z_users = user_hyper @ latent
    return z_users, z


def hypergraph_contrast(a: torch.Tensor, b: torch.Tensor, all_b: torch.Tensor, tau: float = TAU) -> torch.Tensor:
    """MMRec ``ssl_triple_loss``: -sum_k log(exp(cos(a_k, b_k)/tau) / sum_j exp(cos(a_k, all_j)/tau))."""
    a, b, all_b = F.normalize(a), F.normalize(b), F.normalize(all_b)
    positive = torch.exp((a * b).sum(dim=1) / tau)
    total = torch.exp(a @ all_b.T / tau).sum(dim=1)
    return -torch.log(positive / total).sum()


class LGMRec(nn.Module):
    """MMRec LGMRec with BeFA adapters (``"image"``, ``"text"``) on f^m W_m in the local modality encoder."""

    def __init__(self, config: BeFAConfig, data: MMRecData) -> None:
        super().__init__()
        if not all(f in data.features for f, _, _ in MODALITIES.values()):
            raise ValueError("LGMRec needs both image_feat and text_feat (as MMRec's forward does)")
        if config.n_hyper_layer < 1 or not 0.0 < config.keep_rate <= 1.0:
            raise ValueError("LGMRec needs n_hyper_layer >= 1 and keep_rate in (0, 1]")
        d, device = config.embedding_size, torch.device(config.device)
        self.n_users, self.n_items = data.n_users, data.n_items
        self.n_ui_layers, self.n_mm_layers, self.n_hyper_layer = config.n_ui_layers, config.n_mm_layers, \
            config.n_hyper_layer
        self.alpha, self.cl_weight, self.reg_weight = config.lgmrec_alpha, config.lgmrec_cl_weight, config.reg_weight
        self.modalities = list(MODALITIES)

        # graphs: R (U x I, value 1), A_hat, and 1 / (deg_u + 1e-7) (MMRec adj, norm_adj, num_inters)
        rows, cols = binary_interactions(data.splits["train"])
        values = bipartite_edge_values(rows, cols, self.n_users, self.n_items)
        norm_adj = symmetric_adjacency(rows, cols, values, self.n_users, self.n_items)
        adj = torch.sparse_coo_tensor(torch.stack([rows, cols]), torch.ones(rows.numel()),
                                      (self.n_users, self.n_items), check_invariants=True).coalesce()
        inv_deg = 1.0 / (torch.bincount(rows, minlength=self.n_users).float() + 1e-7)
        self.register_buffer("adj", adj.to_sparse_csr(), persistent=False)
        self.register_buffer("norm_adj", norm_adj.to_sparse_csr(), persistent=False)
        self.register_buffer("inv_user_degree", inv_deg[:, None], persistent=False)

        # parameters in MMRec's order (same draws from the global RNG)
        self.user_embedding = nn.Embedding(self.n_users, d)
        self.item_id_embedding = nn.Embedding(self.n_items, d)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_id_embedding.weight)
        self.drop = nn.Dropout(p=1.0 - config.keep_rate)
        for m, (feat, hyper, trs) in MODALITIES.items():
            f = torch.tensor(data.features[feat], dtype=torch.float32)  # frozen (MMRec freeze=True)
            self.register_buffer(f"{m}_features", f, persistent=False)
            setattr(self, trs, nn.Parameter(nn.init.xavier_uniform_(torch.zeros(f.shape[1], d))))
            setattr(self, hyper, nn.Parameter(nn.init.xavier_uniform_(torch.zeros(f.shape[1], config.hyper_num))))
        # built last so that the base parameters draw the same random numbers with the adapter on or off
        self.adapters = adapters(self.modalities, d, config.adapter, config.layer_times, config.dropout_rate)
        self.to(device)

    def pre_epoch(self) -> None:
        """Nothing to do per epoch."""

    # ------------------------------------------------------------------------------------------ encoders
    def features(self, m: str) -> torch.Tensor:
        return getattr(self, f"{m}_features")

    def local_item_features(self, m: str) -> torch.Tensor:
        """X_m = BeFA_m(f^m W_m): the item input of MMRec's ``mge`` (the adapter's insertion point)."""
        return self.adapters[m](self.features(m) @ getattr(self, MODALITIES[m][2]))

    def local_modality_embedding(self, m: str) -> torch.Tensor:
        """MMRec ``mge``: A_hat^L [R X_m / (deg_u + 1e-7); X_m], L = ``n_mm_layers``."""
        items = self.local_item_features(m)
        users = torch.sparse.mm(self.adj, items) * self.inv_user_degree
        h = torch.cat([users, items])
        for _ in range(self.n_mm_layers):
            h = torch.sparse.mm(self.norm_adj, h)
        return h

    def hyperedges(self, m: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(H_i^m, H_u^m) = gumbel_softmax of f^m V_m and of R f^m V_m (raw features: no adapter)."""
        item_logits = self.features(m) @ getattr(self, MODALITIES[m][1])
        user_logits = torch.sparse.mm(self.adj, item_logits)
        return F.gumbel_softmax(item_logits, TAU, dim=1), F.gumbel_softmax(user_logits, TAU, dim=1)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
        """MMRec ``forward``: (users, items, {m: (Z_u^m, Z^m)}), random draws in MMRec's order."""
        hyper = {m: self.hyperedges(m) for m in self.modalities}
        cge = lightgcn(self.norm_adj, torch.cat([self.user_embedding.weight, self.item_id_embedding.weight]),
                       self.n_ui_layers)
        local = {m: self.local_modality_embedding(m) for m in self.modalities}
        lge = cge + (F.normalize(local["image"]) + F.normalize(local["text"]))
        glob = {}
        for m in self.modalities:
            item_hyper = self.drop(hyper[m][0])
            user_hyper = self.drop(hyper[m][1])
            glob[m] = hypergraph_propagation(item_hyper, user_hyper, cge[self.n_users:], self.n_hyper_layer)
        ghe = torch.cat(glob["image"]) + torch.cat(glob["text"])
        users, items = torch.split(lge + self.alpha * F.normalize(ghe), [self.n_users, self.n_items])
        return users, items, glob

    # --------------------------------------------------------------------------------------------- loss
    def loss(self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> dict[str, torch.Tensor]:
        """MMRec ``calculate_loss``: parts are the weighted terms, ``total`` their sum."""
        user_all, item_all, glob = self()
        u, p, n = user_all[users], item_all[positives], item_all[negatives]
        (uv, iv), (ut, it) = glob["image"], glob["text"]
        hcl = hypergraph_contrast(uv[users], ut[users], ut) + hypergraph_contrast(iv[positives], it[positives], it)
        parts = {"bpr": bpr_loss(u, p, n), "hcl": self.cl_weight * hcl,
                 "reg": self.reg_weight * mmrec_emb_loss(u, p, n)}
        parts["total"] = parts["bpr"] + parts["hcl"] + parts["reg"]
        return parts

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(users, items) in eval mode (MMRec ``full_sort_predict``; fresh Gumbel noise, no dropout)."""
        was_training = self.training
        self.eval()
        try:
            users, items, _ = self()
            return users, items
        finally:
            self.train(was_training)
