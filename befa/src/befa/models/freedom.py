"""FREEDOM (Zhou & Shen, ACM MM'23) as MMRec implements it (``enoche/MMRec:src/models/freedom.py``), plus BeFA.

- Frozen item-item graph (the paper's "freezing" part): per modality the top-k cosine neighbours of the raw
  features (self included) with weight 1, normalised D^-1/2 A D^-1/2 by the kNN row degree (+1e-7), then
  S = mm_image_weight * S_v + (1 - mm_image_weight) * S_t. Built sparse in row chunks and cached on disk
  under a hash of the features (MMRec caches it as ``mm_adj_freedomdsp_{k}_{10 w}.pt``).
- Degree-sensitive edge pruning (the paper's "denoising" part): each epoch (``pre_epoch``) keep
  int(|E| (1 - edge_dropout)) training edges drawn without replacement with probability proportional to
  1/sqrt(d_u d_i) (degrees of the full training graph), then re-normalise the kept bipartite graph by
  its own degrees (+1e-7) and symmetrise it.
- Representations (convolutions on both graphs): h = S^L e^id (``n_layers``); LightGCN, the mean over layers
  0..``n_ui_layers``, on the pruned user-item graph; items = LightGCN_i + h, users = LightGCN_u. Evaluation
  (``full_sort_predict``, here ``embeddings``) propagates over the full, unpruned graph ``norm_adj``.
- Loss: BPR -mean logsigmoid(x_ui - x_uj) on these representations, plus
  reg_weight * sum_m BPR(u, W_m f_i^m, W_m f_j^m) with the projected features ``image_trs``/``text_trs``
  of the trainable raw feature tables (``nn.Embedding.from_pretrained(..., freeze=False)``); no L2 term.

Where the adapters sit (spec 4.2): BeFA_m on the ``image_trs``/``text_trs`` outputs, i.e. inside the modality
BPR terms. The scores do not use the projected features (the graph is frozen from the raw features), so the
adapters act only through the gradients those terms send to the user embeddings; with ``reg_weight`` = 0
they have no effect at all. With ``config.adapter`` off they are identities and this is MMRec's FREEDOM.

The pruning draws from the module's own CPU ``torch.Generator`` seeded with ``config.seed``; its state is
the persistent buffer ``prune_rng``, so ``state_dict()`` round trips (and the trainer's resume) continue the
same sequence of pruned graphs on any device.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from befa.adapter import adapters
from befa.config import BeFAConfig
from common.data.mmrec import MMRecData
from mvgcn.graphs import cached_sparse, feature_key, user_item_graph

log = logging.getLogger(__name__)

MODALITY_FILES = {"image": "image_feat", "text": "text_feat"}  # MMRec's v_feat, t_feat
MULTINOMIAL_MAX_CATEGORIES = 2**24  # torch.multinomial's limit


# ----------------------------------------------------------------------------------------------- graphs
def knn_binary_graph(features: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """MMRec FREEDOM ``get_knn_adj_mat`` + ``compute_normalized_laplacian``, in row chunks.

    Top-k cosine neighbours per row (self included), weight 1; value (r_i + 1e-7)^-1/2 (r_j + 1e-7)^-1/2
    with r the row sums of that binary kNN matrix (k for every row). Returns a coalesced COO [N, N].
    """
    normed = F.normalize(features.float(), dim=1)
    n = normed.shape[0]
    cols = torch.cat([torch.topk(normed[s : s + chunk] @ normed.T, k, dim=1).indices.reshape(-1)
                      for s in range(0, n, chunk)])
    rows = torch.arange(n).repeat_interleave(k)
    inv_sqrt = (1e-7 + torch.bincount(rows, minlength=n).float()).pow(-0.5)
    values = inv_sqrt[rows] * inv_sqrt[cols]
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (n, n), check_invariants=True).coalesce()


def freedom_item_graph(features: dict[str, torch.Tensor], k: int, image_weight: float) -> torch.Tensor:
    """S = w S_image + (1 - w) S_text (MMRec ``mm_adj``), or the one modality's graph."""
    graphs = {m: knn_binary_graph(f, k) for m, f in features.items()}
    if len(graphs) == 1:
        return next(iter(graphs.values()))
    return (image_weight * graphs["image"] + (1.0 - image_weight) * graphs["text"]).coalesce()


def cached_freedom_item_graph(features: dict[str, np.ndarray], k: int, image_weight: float,
                              cache_dir: str | Path) -> torch.Tensor:
    """``freedom_item_graph``, loaded from / written to ``cache_dir`` under a hash of features, k and w."""
    h = hashlib.sha256(f"freedom k={k} w={image_weight!r}".encode())
    for m in sorted(features):
        h.update(f"{m}:{feature_key(features[m], k)}".encode())
    path = Path(cache_dir) / f"freedom_mm_adj_knn{k}_{h.hexdigest()[:20]}.pt"
    return cached_sparse(path, lambda: freedom_item_graph({m: torch.from_numpy(f) for m, f in features.items()},
                                                          k, image_weight), f"FREEDOM's item-item graph (k={k})")


def bipartite_edge_values(rows: torch.Tensor, cols: torch.Tensor, n_users: int, n_items: int) -> torch.Tensor:
    """MMRec FREEDOM ``_normalize_adj_m``: (d_u + 1e-7)^-1/2 (d_i + 1e-7)^-1/2 per edge of these edges."""
    deg_u = 1e-7 + torch.bincount(rows, minlength=n_users).float()
    deg_i = 1e-7 + torch.bincount(cols, minlength=n_items).float()
    return deg_u.pow(-0.5)[rows] * deg_i.pow(-0.5)[cols]


def symmetric_adjacency(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, n_users: int,
                        n_items: int) -> torch.Tensor:
    """The (U+I) x (U+I) COO with the user-item block and its transpose (users first, then items)."""
    r, c = torch.cat([rows, cols + n_users]), torch.cat([cols + n_users, rows])
    size = (n_users + n_items,) * 2
    return torch.sparse_coo_tensor(torch.stack([r, c]), torch.cat([values, values]), size,
                                   check_invariants=True).coalesce()


def sample_without_replacement(weights: torch.Tensor, n: int, generator: torch.Generator,
                               max_categories: int = MULTINOMIAL_MAX_CATEGORIES) -> torch.Tensor:
    """``torch.multinomial(weights, n)`` (MMRec); above its 2^24-category limit, the same law by the
    exponential race: the n largest weights / Exp(1) (Efraimidis-Spirakis)."""
    if weights.numel() <= max_categories:
        return torch.multinomial(weights, n, replacement=False, generator=generator)
    race = torch.empty_like(weights).exponential_(1.0, generator=generator)
    return torch.topk(weights / race, n, sorted=False).indices


def lightgcn(adj: torch.Tensor, ego: torch.Tensor, n_layers: int) -> torch.Tensor:
    """Mean over layers 0..L of E^(l+1) = A E^(l) (MMRec FREEDOM ``forward``, LightGCN part)."""
    layers = [ego]
    for _ in range(n_layers):
        ego = torch.sparse.mm(adj, ego)
        layers.append(ego)
    return torch.stack(layers, dim=1).mean(dim=1)


def bpr_loss(users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """MMRec FREEDOM ``bpr_loss``: -mean logsigmoid(<u, i+> - <u, j->)."""
    return -F.logsigmoid((users * positives).sum(1) - (users * negatives).sum(1)).mean()


# ------------------------------------------------------------------------------------------------ model
class FREEDOM(nn.Module):
    """MMRec FREEDOM with BeFA adapters (``"image"``, ``"text"``) on the ``*_trs`` outputs."""

    def __init__(self, config: BeFAConfig, data: MMRecData) -> None:
        super().__init__()
        d, device = config.embedding_size, torch.device(config.device)
        self.n_users, self.n_items = data.n_users, data.n_items
        self.n_layers, self.n_ui_layers = config.n_layers, config.n_ui_layers
        self.reg_weight, self.edge_dropout = config.reg_weight, config.edge_dropout
        raw = {m: data.features[f] for m, f in MODALITY_FILES.items() if f in data.features}
        if not raw:
            raise ValueError("FREEDOM needs image_feat and/or text_feat")
        self.modalities = list(raw)

        # graphs: the full normalised user-item graph (MMRec get_norm_adj_mat; evaluation), the training
        # edges with their pruning weights (get_edge_info; kept on the CPU for the generator), the kNN graph
        train = data.splits["train"].tocoo()
        self.edges = torch.from_numpy(np.stack([train.row, train.col]).astype(np.int64))
        self.edge_weights = bipartite_edge_values(self.edges[0], self.edges[1], self.n_users, self.n_items)
        norm_adj = user_item_graph(data.splits["train"])[0]
        self.register_buffer("norm_adj", norm_adj.to(device).to_sparse_csr(), persistent=False)
        self.register_buffer("masked_adj", None, persistent=False)
        mm_adj = cached_freedom_item_graph(raw, config.knn_k, config.mm_image_weight, config.cache_dir)
        self.register_buffer("mm_adj", mm_adj.to(device).to_sparse_csr(), persistent=False)
        self.register_buffer("prune_rng", torch.Generator().manual_seed(config.seed).get_state())

        # parameters, in MMRec's order (same draws from the global RNG)
        self.user_embedding = nn.Embedding(self.n_users, d)
        self.item_id_embedding = nn.Embedding(self.n_items, d)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_id_embedding.weight)
        for m, f in raw.items():  # MMRec's image_embedding, image_trs, text_embedding, text_trs (a copy: trained)
            table = torch.tensor(f, dtype=torch.float32)
            setattr(self, f"{m}_embedding", nn.Embedding.from_pretrained(table, freeze=False))
            setattr(self, f"{m}_trs", nn.Linear(f.shape[1], d))
        # built last so that the base parameters draw the same random numbers with the adapter on or off
        self.adapters = adapters(self.modalities, d, config.adapter, config.layer_times, config.dropout_rate)
        self.to(device)

    # --------------------------------------------------------------------------------------- pruning
    def n_kept_edges(self) -> int:
        """MMRec's ``degree_len = int(|E| * (1. - dropout))``."""
        return int(self.edge_weights.numel() * (1.0 - self.edge_dropout))

    def pre_epoch(self) -> None:
        """MMRec ``pre_epoch_processing``: a freshly pruned, re-normalised training graph ``masked_adj``."""
        if self.edge_dropout <= 0.0:
            self.masked_adj = self.norm_adj
            return
        generator = torch.Generator()
        generator.set_state(self.prune_rng.cpu())
        keep = sample_without_replacement(self.edge_weights, self.n_kept_edges(), generator)
        self.prune_rng.copy_(generator.get_state())
        rows, cols = self.edges[:, keep]
        values = bipartite_edge_values(rows, cols, self.n_users, self.n_items)
        adj = symmetric_adjacency(rows, cols, values, self.n_users, self.n_items)
        self.masked_adj = adj.to(self.norm_adj.device).to_sparse_csr()

    # --------------------------------------------------------------------------------------- forward
    def forward(self, adj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """MMRec ``forward(adj)``: (users, items) = LightGCN on ``adj``, items + S^L e^id."""
        h = self.item_id_embedding.weight
        for _ in range(self.n_layers):
            h = torch.sparse.mm(self.mm_adj, h)
        ego = torch.cat([self.user_embedding.weight, self.item_id_embedding.weight])
        users, items = torch.split(lightgcn(adj, ego, self.n_ui_layers), [self.n_users, self.n_items])
        return users, items + h

    def modality_features(self, m: str, items: torch.Tensor) -> torch.Tensor:
        """BeFA_m(W_m f_i^m + b_m) for ``items`` (MMRec ``image_trs(image_embedding.weight)[items]``)."""
        return self.adapters[m](getattr(self, f"{m}_trs")(getattr(self, f"{m}_embedding")(items)))

    def loss(self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> dict[str, torch.Tensor]:
        """MMRec ``calculate_loss``: parts are the weighted terms, ``total`` their sum.

        Runs ``pre_epoch()`` first if no pruned graph exists yet. Only the batch's items are projected
        (MMRec projects all items, then indexes: the same values).
        """
        if self.masked_adj is None:
            self.pre_epoch()
        user_all, item_all = self(self.masked_adj)
        u = user_all[users]
        losses = {"bpr": bpr_loss(u, item_all[positives], item_all[negatives])}
        batch = torch.cat([positives, negatives])
        for m in self.modalities:
            feats = self.modality_features(m, batch)
            losses[f"bpr_{m}"] = self.reg_weight * bpr_loss(u, feats[: positives.shape[0]],
                                                             feats[positives.shape[0]:])
        losses["total"] = sum(losses.values())
        return losses

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(users, items) over the full graph ``norm_adj`` (MMRec ``full_sort_predict``)."""
        return self(self.norm_adj)
