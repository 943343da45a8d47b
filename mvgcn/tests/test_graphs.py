"""Graph views: normalisation against dense references, chunking, and the feature-keyed cache."""

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from mvgcn.graphs import cached_knn_graph, knn_cosine_graph, user_item_graph


def test_user_item_graph_is_symmetric_normalised_bipartite_adjacency():
    rng = np.random.default_rng(0)
    r = (rng.random((7, 5)) < 0.4).astype(np.float32)
    r[:, 4] = 0  # an item without interactions keeps a zero row (no division by zero)
    a = np.zeros((12, 12), np.float32)
    a[:7, 7:], a[7:, :7] = r, r.T
    deg = a.sum(1)
    inv = np.where(deg > 0, deg, 1) ** -0.5 * (deg > 0)
    want = inv[:, None] * a * inv[None, :]
    norm_adj, block = user_item_graph(sp.csr_matrix(r))
    assert np.allclose(norm_adj.to_dense().numpy(), want, atol=1e-6)
    assert np.allclose(block.to_dense().numpy(), want[:7, 7:], atol=1e-6)


def dense_knn_reference(x: torch.Tensor, k: int) -> torch.Tensor:
    sim = F.normalize(x, dim=1) @ F.normalize(x, dim=1).T
    vals, idx = sim.topk(k, dim=1)
    s = torch.zeros_like(sim).scatter_(1, idx, vals)
    d = s.sum(1).pow(-0.5)
    return d[:, None] * s * d[None, :]


def test_knn_graph_equals_dense_reference_and_keeps_self_and_k_per_row():
    x = torch.randn(50, 8, generator=torch.Generator().manual_seed(0)).abs()
    g = knn_cosine_graph(x, k=5, chunk=7)  # several chunks
    assert torch.allclose(g.to_dense(), dense_knn_reference(x, 5), atol=1e-6)
    dense = g.to_dense()
    assert ((dense > 0).sum(1) == 5).all()
    assert (dense.diagonal() > 0).all()  # cosine with itself is the largest


def test_knn_graph_is_directed_not_symmetrised():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.1], [1.0, 0.2], [0.0, 1.0]])
    dense = knn_cosine_graph(x, k=2).to_dense()
    assert dense[3, 2] > 0 and dense[2, 3] == 0  # 3's nearest other item is 2, not the reverse


def test_knn_cache_reuses_same_features_and_rebuilds_changed_ones(tmp_path):
    feats = np.random.default_rng(0).random((30, 6)).astype(np.float32)
    g1 = cached_knn_graph(feats, 4, tmp_path, "img")
    assert len(list(tmp_path.glob("img_knn4_*.pt"))) == 1
    g2 = cached_knn_graph(feats, 4, tmp_path, "img")
    assert torch.equal(g1.to_dense(), g2.to_dense())
    changed = feats.copy()
    changed[3, 2] += 1.0
    g3 = cached_knn_graph(changed, 4, tmp_path, "img")
    assert len(list(tmp_path.glob("img_knn4_*.pt"))) == 2  # a new key, not the stale graph
    assert torch.allclose(g3.to_dense(), dense_knn_reference(torch.from_numpy(changed), 4), atol=1e-6)
    cached_knn_graph(feats, 5, tmp_path, "img")
    assert len(list(tmp_path.glob("img_knn5_*.pt"))) == 1  # k is part of the key
