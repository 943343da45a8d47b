"""The two graph views of MGCN, built sparse (``torch.sparse``; no DGL, no dense N x N matrix).

- User-item view (Eq. 3): A_hat = D^-1/2 A D^-1/2 on the bipartite graph without self-loops, nodes
  ordered users then items, and its user-item block R used for user modality features (Eq. 10).
- Item-item view (Eqs. 6-8): per modality, cosine similarity of the raw features, top-k per row
  (self included), edge weight = cosine, then D^-1/2 S D^-1/2 with D the row sums of the kept
  weights (MMRec ``build_knn_normalized_graph(..., norm_type='sym')``; directed, not symmetrised).
  Built in row chunks and cached on disk under a key made of a hash of the features and k.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)


def _to_torch(m: sp.coo_matrix) -> torch.Tensor:
    index = torch.from_numpy(np.stack([m.row, m.col]).astype(np.int64))
    values = torch.from_numpy(m.data.astype(np.float32))
    return torch.sparse_coo_tensor(index, values, m.shape, check_invariants=True).coalesce()


def user_item_graph(train: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor]:
    """(A_hat [(U+I) x (U+I)], R [U x I]): the normalised bipartite adjacency and its user-item block."""
    n_users, n_items = train.shape
    coo = train.tocoo()
    deg_u = np.asarray(train.sum(1)).ravel()
    deg_i = np.asarray(train.sum(0)).ravel()
    inv_u = np.where(deg_u > 0, deg_u, 1.0) ** -0.5 * (deg_u > 0)
    inv_i = np.where(deg_i > 0, deg_i, 1.0) ** -0.5 * (deg_i > 0)
    w = coo.data * inv_u[coo.row] * inv_i[coo.col]
    block = sp.coo_matrix((w, (coo.row, coo.col)), shape=(n_users, n_items))
    rows = np.concatenate([block.row, block.col + n_users])
    cols = np.concatenate([block.col + n_users, block.row])
    full = sp.coo_matrix((np.concatenate([w, w]), (rows, cols)), shape=(n_users + n_items,) * 2)
    return _to_torch(full), _to_torch(block)


def knn_cosine_graph(features: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """Sym-normalised top-k cosine graph [N x N] of ``features`` [N, d], computed in row chunks."""
    normed = F.normalize(features.float(), dim=1)
    rows, cols, vals = [], [], []
    for start in range(0, normed.shape[0], chunk):
        sim = normed[start : start + chunk] @ normed.T
        top = torch.topk(sim, k, dim=1)
        rows.append(torch.arange(start, start + sim.shape[0]).repeat_interleave(k))
        cols.append(top.indices.reshape(-1))
        vals.append(top.values.reshape(-1))
    row, col, val = torch.cat(rows), torch.cat(cols), torch.cat(vals)
    deg = torch.zeros(normed.shape[0]).index_add_(0, row, val)
    inv_sqrt = deg.pow(-0.5)
    inv_sqrt[torch.isinf(inv_sqrt)] = 0.0
    val = inv_sqrt[row] * val * inv_sqrt[col]
    size = (normed.shape[0],) * 2
    return torch.sparse_coo_tensor(torch.stack([row, col]), val, size, check_invariants=True).coalesce()


def feature_key(features: np.ndarray, k: int) -> str:
    """Cache key: SHA-256 of the feature bytes, shape and dtype, plus k."""
    h = hashlib.sha256()
    h.update(f"{features.shape}{features.dtype}k={k}".encode())
    h.update(np.ascontiguousarray(features).data)
    return h.hexdigest()[:20]


def cached_sparse(path: Path, build: Callable[[], torch.Tensor], what: str) -> torch.Tensor:
    """A sparse COO graph from ``path``, or ``build()`` it and write it there atomically.

    The caller puts a content hash into ``path``, so a file is only ever reused for the same inputs; an
    unreadable file (truncated, foreign) is reported and rebuilt.
    """
    if path.is_file():
        try:
            saved = torch.load(path, weights_only=True)
            return torch.sparse_coo_tensor(saved["indices"], saved["values"], saved["size"],
                                           is_coalesced=True, check_invariants=True)
        except Exception as err:
            log.warning("cached graph %s is unreadable (%s); rebuilding it", path, type(err).__name__)
    log.info("building %s -> %s", what, path)
    graph = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save({"indices": graph.indices(), "values": graph.values(), "size": tuple(graph.shape)}, tmp)
    os.replace(tmp, path)
    return graph


def cached_knn_graph(features: np.ndarray, k: int, cache_dir: str | Path, name: str) -> torch.Tensor:
    """``knn_cosine_graph`` of ``features``, cached in ``cache_dir`` under a hash of the features and k."""
    path = Path(cache_dir) / f"{name}_knn{k}_{feature_key(features, k)}.pt"
    return cached_sparse(path, lambda: knn_cosine_graph(torch.from_numpy(features), k), f"the {name} kNN graph")
