"""LATTICE against dense references of MMRec's formulas (``enoche/MMRec:src/models/lattice.py``,
``src/utils/utils.py``), the BeFA adapter switch, the per-epoch graph schedule and a short training run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn as nn
import torch.nn.functional as F

from befa.adapter import adapter_parameters
from befa.config import BeFAConfig
from befa.models.lattice import LATTICE, interaction_graph, knn_edges
from common.data.bpr import BPRSampler
from common.data.mmrec import load_mmrec
from common.metrics.ranking import evaluate_full_ranking, popularity_baseline
from common.synthetic import mmrec as synthetic_mmrec


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return load_mmrec(synthetic_mmrec.write(root / "tiny", seed=1, n_users=150, n_items=90, image_dim=48,
                                            text_dim=24))


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return BeFAConfig(cache_dir=str(tmp_path_factory.mktemp("graphs")), adapter=False, train_batch_size=64,
                      device="cpu")


def make(config: BeFAConfig, data, seed: int = 0, **overrides) -> LATTICE:
    torch.manual_seed(seed)
    return LATTICE(dataclasses.replace(config, **overrides), data)


# dense references, written as MMRec's utils.py
def build_sim(x: torch.Tensor) -> torch.Tensor:
    x = x / torch.norm(x, p=2, dim=-1, keepdim=True)
    return x @ x.T


def build_knn_neighbourhood(adj: torch.Tensor, k: int) -> torch.Tensor:
    val, ind = torch.topk(adj, k, dim=-1)
    return torch.zeros_like(adj).scatter_(-1, ind, val)


def compute_normalized_laplacian(adj: torch.Tensor) -> torch.Tensor:
    d = adj.sum(-1).pow(-0.5)
    d[torch.isinf(d)] = 0.0
    return torch.diagflat(d) @ adj @ torch.diagflat(d)


def dense_item_graph(model: LATTICE) -> torch.Tensor:
    """MMRec ``forward(build_item_graph=True)``'s item_adj, dense."""
    w, k, lam = torch.softmax(model.modal_weight, 0), model.config.knn_k, model.config.lambda_coeff
    learned = [build_knn_neighbourhood(build_sim(model.projected(m)), k) for m in ("image", "text")]
    original = [compute_normalized_laplacian(build_knn_neighbourhood(build_sim(model.features[m].detach()), k))
                for m in ("image", "text")]
    learned_adj = compute_normalized_laplacian(w[0] * learned[0] + w[1] * learned[1])
    return (1 - lam) * learned_adj + lam * (w[0] * original[0] + w[1] * original[1])


def dense_forward(model: LATTICE, item_adj: torch.Tensor, train: sp.csr_matrix):
    """MMRec ``forward`` with cf_model='lightgcn', dense: D^-1 (A + I) and 2 LightGCN layers."""
    n_users, n_items = train.shape
    a = torch.zeros(n_users + n_items, n_users + n_items)
    r = torch.from_numpy(train.toarray())
    a[:n_users, n_users:], a[n_users:, :n_users] = r, r.T
    a += torch.eye(n_users + n_items)
    p = a / a.sum(1, keepdim=True)
    h = model.item_id_embedding.weight
    for _ in range(model.config.n_layers):
        h = item_adj @ h
    ego = torch.cat([model.user_embedding.weight, model.item_id_embedding.weight])
    layers = [ego, p @ ego, p @ p @ ego]
    users, items = torch.split(torch.stack(layers, 1).mean(1), [n_users, n_items])
    return users, items + F.normalize(h, p=2, dim=1)


def test_original_graphs_equal_mmrec_dense_formula(tiny, config):
    model = make(config, tiny)
    for m in ("image", "text"):
        graph = getattr(model, f"original_{m}")
        want = compute_normalized_laplacian(build_knn_neighbourhood(build_sim(torch.from_numpy(
            tiny.features[f"{m}_feat"])), config.knn_k))
        assert graph.values().numel() == tiny.n_items * config.knn_k
        torch.testing.assert_close(graph.to_dense(), want, rtol=1e-5, atol=1e-6)
    assert make(config, tiny).original_image.values().equal(model.original_image.values())  # from the cache
    uncached = make(config, tiny, cache_dir="")
    torch.testing.assert_close(uncached.original_text.to_dense(), model.original_text.to_dense())


def test_interaction_graph_is_row_normalised_with_self_loops():
    train = sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 1]], dtype=np.float32))
    want = torch.tensor([[1, 0, 1, 0, 1], [0, 1, 0, 0, 1], [1, 0, 1, 0, 0], [0, 0, 0, 1, 0], [1, 1, 0, 0, 1]],
                        dtype=torch.float32)
    want /= want.sum(1, keepdim=True)  # e.g. user 0: itself, items 0 and 2 -> 1/3 each
    torch.testing.assert_close(interaction_graph(train).to_dense(), want)


def test_chunked_learned_graph_and_its_gradients_equal_dense(tiny, config):
    model = make(config, tiny)
    with torch.no_grad():
        model.modal_weight.copy_(torch.tensor([0.2, 0.9]))  # unequal modality weights
    x = model.projected("image")
    row, col, val = knn_edges(x, config.knn_k, chunk=7)
    sparse = torch.sparse_coo_tensor(torch.stack([row, col]), val, (tiny.n_items,) * 2, check_invariants=True)
    want = build_knn_neighbourhood(build_sim(x), config.knn_k)
    torch.testing.assert_close(sparse.to_dense(), want, rtol=1e-5, atol=1e-6)

    probe = torch.randn(tiny.n_items, 5, generator=torch.Generator().manual_seed(3))
    grads = []
    for build in (lambda: model.item_graph(chunk=7), lambda: dense_item_graph(model)):
        model.zero_grad()
        graph = build()
        (graph @ probe if graph.layout == torch.strided else torch.sparse.mm(graph, probe)).square().sum().backward()
        grads.append([p.grad.clone() for p in (model.modal_weight, model.trs["image"].weight, model.features["text"])])
        dense = graph.detach().to_dense() if graph.is_sparse else graph.detach()
        grads[-1].append(dense)
    for got, want in zip(*grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_loss_parts_equal_direct_computation(tiny, config):
    model = make(config, tiny, reg_weight=0.01)
    users, pos, neg = torch.tensor([0, 3, 3, 7, 149]), torch.tensor([1, 2, 5, 8, 89]), torch.tensor([4, 0, 6, 9, 10])
    parts = model.loss(users, pos, neg)
    u_all, i_all = dense_forward(model, dense_item_graph(model), tiny.splits["train"])
    u, p, n = u_all[users], i_all[pos], i_all[neg]
    bpr = -torch.log(torch.sigmoid((u * p).sum(1) - (u * n).sum(1))).mean()
    reg = 0.01 * 0.5 * (u.square().sum() + p.square().sum() + n.square().sum()) / 64  # the configured batch size
    torch.testing.assert_close(parts["bpr"], bpr)
    torch.testing.assert_close(parts["reg"], reg)
    torch.testing.assert_close(parts["total"], bpr + reg)
    # hand-set: all ID embeddings zero -> every final embedding is 0 (normalize(0) = 0): bpr = log 2, reg = 0
    with torch.no_grad():
        model.user_embedding.weight.zero_()
        model.item_id_embedding.weight.zero_()
    zero = model.loss(users, pos, neg)
    torch.testing.assert_close(zero["bpr"], torch.tensor(np.log(2.0), dtype=torch.float32))
    assert zero["reg"] == 0


def test_adapter_off_is_the_exact_base_and_on_adds_two_adapters(tiny, config):
    off, off2 = make(config, tiny), make(config, tiny)
    on = make(config, tiny, adapter=True, layer_times=2)
    base = off.state_dict()
    assert not any(p.numel() for p in off.adapters.parameters())
    assert {k for k in on.state_dict() if not k.startswith("adapters.")} == set(base)
    for k, v in on.state_dict().items():
        if not k.startswith("adapters."):
            assert torch.equal(v, base[k]), k
    n_off, n_on = (sum(p.numel() for p in m.parameters()) for m in (off, on))
    assert n_on - n_off == 2 * adapter_parameters(config.embedding_size, 2)

    batch = (torch.arange(0, 40), torch.arange(10, 50), torch.arange(50, 90))
    loss_off = off.loss(*batch)["total"]
    assert torch.equal(loss_off, off2.loss(*batch)["total"])
    assert not torch.allclose(on.loss(*batch)["total"], loss_off)
    assert not torch.allclose(on.embeddings()[1], off.embeddings()[1])
    on.adapters = nn.ModuleDict({m: nn.Identity() for m in on.modalities})  # removing them leaves the base
    on.pre_epoch()
    assert torch.equal(on.loss(*batch)["total"], loss_off)


def test_item_graph_is_rebuilt_once_per_epoch_and_reused_detached(tiny, config):
    model = make(config, tiny, adapter=True)
    builds = []
    build = model.item_graph
    model.item_graph = lambda chunk=None: builds.append(1) or build(chunk)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    batches = list(BPRSampler(tiny.train_users, tiny.train_items, tiny.n_items, batch_size=256).epoch())
    assert len(batches) >= 3
    graphs = []
    for _ in range(2):
        model.pre_epoch()
        for b, batch in enumerate(batches):
            opt.zero_grad()
            model.loss(*batch)["total"].backward()
            graph_params = (model.modal_weight, model.trs["image"].weight, model.features["image"],
                            model.adapters["text"][0].weight)
            if b == 0:  # built with gradient to everything the graph depends on
                assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in graph_params)
                graphs.append(model.item_adj)
            else:  # the stored graph, no gradient to the graph's parameters
                assert all(p.grad is None for p in graph_params)
                assert torch.equal(model.item_adj.values(), graphs[-1].values())
            assert not model.item_adj.requires_grad
            opt.step()
    assert len(builds) == 2
    assert not torch.allclose(graphs[0].to_dense(), graphs[1].to_dense())  # rebuilt from the updated parameters


def test_embeddings_rebuild_the_graph_in_eval_mode_and_keep_the_training_graph(tiny, config):
    model = make(config, tiny, adapter=True, dropout_rate=0.5)
    model.loss(torch.arange(5), torch.arange(5), torch.arange(5, 10))
    stored = model.item_adj
    with torch.no_grad():
        model.trs["text"].weight.mul_(3.0)
    users, items = model.embeddings()
    assert model.training and model.item_adj is stored and not items.requires_grad
    model.eval()
    with torch.no_grad():
        want_u, want_i = model(model.item_graph())  # fresh graph from the current parameters, no dropout
        stale_i = model(stored)[1]
    torch.testing.assert_close(users, want_u)
    torch.testing.assert_close(items, want_i)
    assert not torch.allclose(items, stale_i)


def test_short_training_beats_popularity(tmp_path):
    data = load_mmrec(synthetic_mmrec.write(tmp_path / "smoke", seed=0))
    model = make(BeFAConfig(cache_dir="", adapter=False, train_batch_size=128), data)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sampler = BPRSampler(data.train_users, data.train_items, data.n_items, batch_size=128, seed=0)
    for _ in range(4):
        model.pre_epoch()
        for batch in sampler.epoch():
            opt.zero_grad()
            model.loss(*batch)["total"].backward()
            opt.step()
    users, items = model.embeddings()
    recall = evaluate_full_ranking(lambda u: users[u] @ items.T, data.eval_batches("valid"), (20,))["recall@20"]
    popular = popularity_baseline(data.item_popularity(), data.eval_batches("valid"), (20,))["recall@20"]
    assert recall > 1.5 * popular, (recall, popular)
