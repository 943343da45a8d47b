"""LATTICE (Zhang et al., "Mining Latent Structures for Multimedia Recommendation", ACM MM 2021) as MMRec
implements it (``enoche/MMRec:src/models/lattice.py``, ``src/configs/model/LATTICE.yaml``, the graph helpers
``build_sim`` / ``build_knn_neighbourhood`` / ``compute_normalized_laplacian`` of ``src/utils/utils.py``), with
every item x item graph held sparse.

Paper (section 3) and MMRec, with m in {image, text}, e_i^m the raw feature, x_i the item ID embedding:

- original graphs (paper: initial k-NN modality graphs): S^m = cos(e_i^m, e_j^m), keep the top-k entries of
  each row (self included), S~^m = D^-1/2 S^m D^-1/2 with D the row sums of the kept entries; fixed.
- learned graphs (paper: latent structure learning): e~_i^m = W_m e_i^m + b_m (``image_trs``/``text_trs``;
  the BeFA adapter acts right here, see below), A^m = top-k(cos(e~_i^m, e~_j^m)).
- aggregation, as MMRec (the paper normalises each A^m and mixes per modality before weighting):
  with alpha = softmax(modal_weight) (init [0.5, 0.5]),
  A = (1 - lambda) * norm(sum_m alpha_m A^m) + lambda * sum_m alpha_m S~^m, norm(X) = D^-1/2 X D^-1/2.
- item graph convolution: h = A^L x (L = ``n_layers``, no nonlinearity).
- CF part (``cf_model: lightgcn`` in LATTICE.yaml): the mean of layers 0..2 (``weight_size: [64, 64]``) of
  E <- P E on [users; items] with P = D^-1 (R_bip + I), MMRec's ``get_adj_mat`` (row-normalised, self-loops).
- final: users = CF users, items = CF items + h / ||h||_2; score = dot product.
- loss (MMRec ``bpr_loss``): -mean log sigmoid(s_ui - s_uj) + reg_weight * 0.5 * (||u||^2 + ||i||^2 + ||j||^2)
  / train_batch_size on the final batch embeddings (the configured batch size, also for a short last batch).

Schedule (MMRec): ``pre_epoch`` sets ``build_item_graph``; the first batch of an epoch rebuilds A from the
current parameters with gradient (to modal_weight, the projections, the adapters and the fine-tuned raw
features), later batches reuse it detached. ``embeddings`` (MMRec ``full_sort_predict``) rebuilds A from the
current parameters, without gradient, and leaves the stored training graph alone (MMRec overwrites it, but the
next epoch's first batch rebuilds it before any use, so training is the same).

BeFA (spec 4.2): ``adapters[m]`` is applied to the output of ``image_trs``/``text_trs``, so it feeds the learned
graphs (the only consumer of the projected features under LightGCN). With ``config.adapter`` off the adapters
are identities and this is MMRec's LATTICE.

Sparse vs MMRec's dense code (the same numbers): the similarities are computed in row chunks, each chunk
[chunk, I] is reduced to its top-k at once, so only O(I * k) edges are kept (plus one transient chunk); the
kept values, their row sums and the normalisation are those of the dense masked matrix, and A^m's of two
modalities, and the original graphs, are summed as edge lists (duplicates add up, as in the dense sum). The
chunked matrix products may differ from one dense product in the last float bits, which can only change
which of two exactly tied neighbours is kept. Cosines use ``F.normalize`` (eps 1e-12) where MMRec divides by
the norm: they differ only for an all-zero row, where MMRec yields NaN. ``feat_embed_dim`` is taken equal to
``embedding_size`` and the number of CF layers is ``n_ui_layers`` (both 64 / 2 in MMRec's config).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn
import torch.nn.functional as F

from befa.adapter import adapters
from befa.config import BeFAConfig
from common.data.mmrec import MMRecData
from mvgcn.graphs import cached_knn_graph, knn_cosine_graph
from mvgcn.losses import bpr_loss, embedding_regulariser

MODALITIES = {"image_feat": "image", "text_feat": "text"}
Edges = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (rows, cols, values)


def knn_edges(features: torch.Tensor, k: int, chunk: int | None = None) -> Edges:
    """top-k cosine neighbours of every row (MMRec ``build_knn_neighbourhood(build_sim(x), k)``) as edges.

    Differentiable in the kept values. ``chunk`` rows at a time (default: about 2^24 similarities per chunk),
    so no [N, N] matrix is kept; the kept values are those of the dense top-k.
    """
    n = features.shape[0]
    chunk = chunk or max(1, (1 << 24) // n)
    normed = F.normalize(features, dim=1)
    rows, cols, vals = [], [], []
    for start in range(0, n, chunk):
        top = torch.topk(normed[start : start + chunk] @ normed.T, k, dim=1)
        rows.append(torch.arange(start, start + top.indices.shape[0], device=features.device).repeat_interleave(k))
        cols.append(top.indices.reshape(-1))
        vals.append(top.values.reshape(-1))
    return torch.cat(rows), torch.cat(cols), torch.cat(vals)


def sym_normalise(edges: Edges, n: int) -> Edges:
    """D^-1/2 X D^-1/2 with D the row sums of X given as edges (duplicates add up), zero-degree rows -> 0.

    MMRec ``compute_normalized_laplacian`` on the dense matrix: d = rowsum^-1/2, inf set to 0.
    """
    row, col, val = edges
    deg = torch.zeros(n, dtype=val.dtype, device=val.device).index_add(0, row, val)
    d = deg.pow(-0.5)
    d = d.masked_fill(torch.isinf(d), 0.0)
    return row, col, d[row] * val * d[col]


def interaction_graph(train: sp.csr_matrix) -> torch.Tensor:
    """MMRec LATTICE ``get_adj_mat``: D^-1 (A + I) over [users; items], A the bipartite train graph."""
    n_users, n_items = train.shape
    coo = train.tocoo()
    n = n_users + n_items
    rows = np.concatenate([coo.row, coo.col + n_users, np.arange(n)])
    cols = np.concatenate([coo.col + n_users, coo.row, np.arange(n)])
    adj = sp.coo_matrix((np.ones(rows.size, dtype=np.float64), (rows, cols)), shape=(n, n)).tocsr()
    adj = sp.diags(1.0 / np.asarray(adj.sum(1)).ravel()) @ adj
    adj = adj.tocoo()
    index = torch.from_numpy(np.stack([adj.row, adj.col]).astype(np.int64))
    return torch.sparse_coo_tensor(index, torch.from_numpy(adj.data.astype(np.float32)), (n, n),
                                   check_invariants=True).coalesce()


class LATTICE(nn.Module):
    """MMRec's LATTICE (LightGCN CF part) with a BeFA adapter after each modality projection."""

    def __init__(self, config: BeFAConfig, data: MMRecData) -> None:
        super().__init__()
        self.config = config
        self.n_users, self.n_items = data.n_users, data.n_items
        self.modalities = [m for k, m in MODALITIES.items() if k in data.features]
        if not self.modalities:
            raise ValueError("LATTICE needs image_feat and/or text_feat")
        device, d = torch.device(config.device), config.embedding_size
        self.build_item_graph = True
        self.item_adj: torch.Tensor | None = None
        # parameters in MMRec's creation order, so one seed gives MMRec's initialisation
        self.user_embedding = nn.Embedding(self.n_users, d)
        self.item_id_embedding = nn.Embedding(self.n_items, d)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_id_embedding.weight)
        # raw features are fine-tuned (nn.Embedding.from_pretrained(..., freeze=False))
        self.features = nn.ParameterDict({MODALITIES[k]: nn.Parameter(torch.from_numpy(f).float().clone())
                                          for k, f in data.features.items() if k in MODALITIES})
        self.trs = nn.ModuleDict({m: nn.Linear(self.features[m].shape[1], d) for m in self.modalities})
        self.modal_weight = nn.Parameter(torch.tensor([0.5, 0.5]))
        self.adapters = adapters(self.modalities, d, config.adapter, config.layer_times, config.dropout_rate)
        self.register_buffer("norm_adj", interaction_graph(data.splits["train"]).to_sparse_csr(), persistent=False)
        for k, m in MODALITIES.items():
            if k in data.features:
                self.register_buffer(f"original_{m}", self._original_graph(data.features[k], m), persistent=False)
        self.to(device)

    def _original_graph(self, features: np.ndarray, m: str) -> torch.Tensor:
        """S~^m from the raw features (shared on-disk cache with MGCN's identical graph when cache_dir is set)."""
        cfg = self.config
        if cfg.cache_dir:
            return cached_knn_graph(features, cfg.knn_k, cfg.cache_dir, f"{cfg.dataset}_{m}")
        return knn_cosine_graph(torch.from_numpy(features), cfg.knn_k)

    def pre_epoch(self) -> None:
        """MMRec ``pre_epoch_processing``: rebuild the item graph in the next batch."""
        self.build_item_graph = True

    def projected(self, m: str) -> torch.Tensor:
        """BeFA_m(W_m e^m + b_m): the projected (and adapted) features of modality m."""
        return self.adapters[m](self.trs[m](self.features[m]))

    def item_graph(self, chunk: int | None = None) -> torch.Tensor:
        """A = (1 - lambda) norm(sum_m alpha_m A^m) + lambda sum_m alpha_m S~^m, sparse COO [I, I]."""
        n, k, lam = self.n_items, self.config.knn_k, self.config.lambda_coeff
        weight = torch.softmax(self.modal_weight, dim=0)
        alpha = dict(zip(self.modalities, weight, strict=True)) if len(self.modalities) == 2 else {
            self.modalities[0]: 1.0}  # one modality: MMRec uses its graphs unweighted
        rows, cols, vals = [], [], []
        for m in self.modalities:
            r, c, v = knn_edges(self.projected(m), k, chunk)
            rows.append(r)
            cols.append(c)
            vals.append(alpha[m] * v)
        row, col, val = sym_normalise((torch.cat(rows), torch.cat(cols), torch.cat(vals)), n)
        rows, cols, vals = [row], [col], [(1 - lam) * val]
        for m in self.modalities:
            g = getattr(self, f"original_{m}")
            rows.append(g.indices()[0])
            cols.append(g.indices()[1])
            vals.append(lam * alpha[m] * g.values())
        return torch.sparse_coo_tensor(torch.stack([torch.cat(rows), torch.cat(cols)]), torch.cat(vals), (n, n),
                                       check_invariants=False).coalesce()

    def forward(self, item_adj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(users, items) final embeddings given the item graph (MMRec ``forward``, ``cf_model='lightgcn'``)."""
        h = self.item_id_embedding.weight
        for _ in range(self.config.n_layers):
            h = torch.sparse.mm(item_adj, h)
        ego = torch.cat([self.user_embedding.weight, self.item_id_embedding.weight])
        layers = [ego]
        for _ in range(self.config.n_ui_layers):
            ego = torch.sparse.mm(self.norm_adj, ego)
            layers.append(ego)
        users, items = torch.split(torch.stack(layers, dim=1).mean(dim=1), [self.n_users, self.n_items])
        return users, items + F.normalize(h, p=2, dim=1)

    def loss(self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> dict[str, torch.Tensor]:
        """MMRec ``calculate_loss``: BPR + reg_weight * 0.5 ||batch embeddings||^2 / train_batch_size."""
        if self.build_item_graph or self.item_adj is None:
            item_adj = self.item_graph()
            self.build_item_graph = False
        else:
            item_adj = self.item_adj
        self.item_adj = item_adj.detach()  # later batches of the epoch reuse it without gradient
        u_all, i_all = self(item_adj)
        u, p, n = u_all[users], i_all[positives], i_all[negatives]
        parts = {"bpr": bpr_loss(u, p, n),
                 "reg": self.config.reg_weight * embedding_regulariser(u, p, n, self.config.train_batch_size)}
        parts["total"] = parts["bpr"] + parts["reg"]
        return parts

    @torch.no_grad()
    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """MMRec ``full_sort_predict``: a freshly built item graph (current parameters), in eval mode."""
        was_training = self.training
        self.eval()
        try:
            return self(self.item_graph())
        finally:
            self.train(was_training)
