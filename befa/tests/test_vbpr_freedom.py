"""VBPR and FREEDOM (MMRec ``src/models/vbpr.py``, ``freedom.py``) with and without BeFA, on SYNTHETIC data."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from model_checks import base_state, batch, fill_known, n_parameters, numpy_params

from befa.adapter import adapter_parameters
from befa.config import BeFAConfig
from befa.models.freedom import FREEDOM, cached_freedom_item_graph, sample_without_replacement
from befa.models.vbpr import VBPR, mmrec_bpr_loss, mmrec_emb_loss
from common.data.bpr import BPRSampler
from common.data.mmrec import load_mmrec
from common.metrics.ranking import evaluate_full_ranking, popularity_baseline
from common.synthetic import mmrec as synthetic_mmrec

MODELS = {"vbpr": (VBPR, ["content"]), "freedom": (FREEDOM, ["image", "text"])}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = synthetic_mmrec.write(tmp_path_factory.mktemp("data") / "tiny", seed=1, n_users=150, n_items=90,
                                 image_dim=48, text_dim=24)
    return load_mmrec(root)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    return load_mmrec(synthetic_mmrec.write(tmp_path_factory.mktemp("data") / "smoke", seed=0))


def make(cls, data, tmp_path, seed=0, **overrides):
    torch.manual_seed(seed)
    return cls(BeFAConfig(cache_dir=str(tmp_path / "cache"), **overrides), data)


def log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# ----------------------------------------------------------------------------------- MMRec's formulas
def test_mmrec_loss_helpers_by_hand():
    # -log(1e-10 + sigmoid(2 - 0)) and (||(3,4)|| + ||0|| + ||(1,0)||) / 1 = 6
    assert float(mmrec_bpr_loss(torch.tensor([2.0]), torch.tensor([0.0]))) == pytest.approx(
        -np.log(1e-10 + 1 / (1 + np.exp(-2.0))), rel=1e-6)
    assert float(mmrec_emb_loss(torch.tensor([[3.0, 4.0]]), torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]))) == 6.0
    # divided by the rows of the last tensor: (5 + 5) / 2
    assert float(mmrec_emb_loss(torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 3.0], [4.0, 0.0]]))) == 5.0


def test_vbpr_init_is_mmrecs(tiny, tmp_path):
    """xavier_uniform u [U, 2d] and i [I, d], then Linear(t ⊕ v -> d) re-initialised xavier_normal, bias 0."""
    for adapter in (False, True):
        model = make(VBPR, tiny, tmp_path, seed=3, embedding_size=8, adapter=adapter)
        torch.manual_seed(3)
        u = nn.init.xavier_uniform_(torch.empty(tiny.n_users, 16))
        i = nn.init.xavier_uniform_(torch.empty(tiny.n_items, 8))
        linear = nn.Linear(24 + 48, 8)
        nn.init.xavier_normal_(linear.weight)
        assert torch.equal(model.u_embedding, u) and torch.equal(model.i_embedding, i)
        assert torch.equal(model.item_linear.weight, linear.weight) and not model.item_linear.bias.any()
        feats = np.concatenate([tiny.features["text_feat"], tiny.features["image_feat"]], axis=1)  # text first
        assert np.array_equal(model.item_raw_features.numpy(), feats)


def test_vbpr_loss_matches_mmrec_formulas(tiny, tmp_path):
    model = make(VBPR, tiny, tmp_path, embedding_size=4, reg_weight=0.1, adapter=False)
    fill_known(model)
    users, pos, neg = batch(tiny)
    got = model.loss(users, pos, neg)

    p = numpy_params(model)
    feats = np.concatenate([tiny.features["text_feat"], tiny.features["image_feat"]], axis=1).astype(np.float64)
    items = np.concatenate([p["i_embedding"], feats @ p["item_linear.weight"].T + p["item_linear.bias"]], axis=1)
    u, i, j = p["u_embedding"][users], items[pos], items[neg]
    bpr = -np.log(1e-10 + sigmoid((u * i).sum(1) - (u * j).sum(1))).mean()
    reg = (np.linalg.norm(u) + np.linalg.norm(i) + np.linalg.norm(j)) / len(users)
    assert got["bpr"].item() == pytest.approx(bpr, rel=1e-5)
    assert got["reg"].item() == pytest.approx(0.1 * reg, rel=1e-5)
    assert got["total"].item() == pytest.approx(bpr + 0.1 * reg, rel=1e-5)
    users_emb, items_emb = model.embeddings()
    assert users_emb.shape == (tiny.n_users, 8) and items_emb.shape == (tiny.n_items, 8)
    np.testing.assert_allclose(items_emb.detach().numpy(), items, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------- FREEDOM
def dense_freedom_graphs(data, k, image_weight):
    """MMRec's norm_adj and mm_adj, dense, in float64."""
    r = data.splits["train"].toarray().astype(np.float64)
    n_u, n_i = r.shape
    a = np.zeros((n_u + n_i,) * 2)
    a[:n_u, n_u:], a[n_u:, :n_u] = r, r.T
    d = (a.sum(1) + 1e-7) ** -0.5
    norm_adj = d[:, None] * a * d[None, :]
    graphs = {}
    for m, f in (("image", data.features["image_feat"]), ("text", data.features["text_feat"])):
        f = f.astype(np.float64)
        f = f / np.linalg.norm(f, axis=1, keepdims=True)
        knn = np.argsort(-(f @ f.T), axis=1)[:, :k]
        b = np.zeros((n_i, n_i))
        np.put_along_axis(b, knn, 1.0, axis=1)
        s = (b.sum(1) + 1e-7) ** -0.5
        graphs[m] = s[:, None] * b * s[None, :]
    return norm_adj, image_weight * graphs["image"] + (1 - image_weight) * graphs["text"]


def test_freedom_graphs_match_mmrec(tiny, tmp_path):
    model = make(FREEDOM, tiny, tmp_path, knn_k=5, mm_image_weight=0.3)
    norm_adj, mm_adj = dense_freedom_graphs(tiny, 5, 0.3)
    np.testing.assert_allclose(model.norm_adj.to_dense().numpy(), norm_adj, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.mm_adj.to_dense().numpy(), mm_adj, rtol=1e-5, atol=1e-7)
    # the second build reads the cache written by the first
    assert len(list((tmp_path / "cache").glob("freedom_mm_adj_knn5_*.pt"))) == 1
    raw = {"image": tiny.features["image_feat"], "text": tiny.features["text_feat"]}
    cached = cached_freedom_item_graph(raw, 5, 0.3, tmp_path / "cache")
    assert torch.equal(cached.to_dense(), model.mm_adj.to_dense())


def test_freedom_loss_matches_mmrec_formulas(tiny, tmp_path):
    """edge_dropout 0: MMRec trains on norm_adj itself; the loss and the full-graph scores, by hand."""
    model = make(FREEDOM, tiny, tmp_path, embedding_size=4, reg_weight=0.1, edge_dropout=0.0, knn_k=5,
                 mm_image_weight=0.3, n_layers=2, adapter=False)
    raw = {k: v.copy() for k, v in tiny.features.items()}
    fill_known(model)
    assert all(np.array_equal(raw[k], tiny.features[k]) for k in raw)  # the trained tables are copies
    users, pos, neg = batch(tiny)
    got = model.loss(users, pos, neg)

    p = numpy_params(model)
    norm_adj, mm_adj = dense_freedom_graphs(tiny, 5, 0.3)
    h = mm_adj @ (mm_adj @ p["item_id_embedding.weight"])
    ego = np.concatenate([p["user_embedding.weight"], p["item_id_embedding.weight"]])
    layers = [ego, norm_adj @ ego, norm_adj @ norm_adj @ ego]
    final = np.mean(layers, axis=0)
    user_all, item_all = final[: tiny.n_users], final[tiny.n_users:] + h
    u = user_all[users]

    def bpr(i, j):
        return -log_sigmoid((u * i).sum(1) - (u * j).sum(1)).mean()

    expected = {"bpr": bpr(item_all[pos], item_all[neg])}
    for m in ("image", "text"):
        feats = p[f"{m}_embedding.weight"] @ p[f"{m}_trs.weight"].T + p[f"{m}_trs.bias"]
        expected[f"bpr_{m}"] = 0.1 * bpr(feats[pos], feats[neg])
    expected["total"] = sum(expected.values())
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key].item() == pytest.approx(value, rel=1e-5), key
    users_emb, items_emb = model.embeddings()
    assert users_emb.shape == (tiny.n_users, 4) and items_emb.shape == (tiny.n_items, 4)
    np.testing.assert_allclose(items_emb.detach().numpy(), item_all, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(users_emb.detach().numpy(), user_all, rtol=1e-4, atol=1e-6)


def kept_edges(model):
    """(user, item) pairs of the pruned graph's user-item block, and its dense [U+I, U+I] matrix."""
    dense = model.masked_adj.to_dense().numpy()
    block = dense[: model.n_users, model.n_users:]
    return set(zip(*np.nonzero(block))), dense


def test_freedom_pruning_keeps_int_edges_renormalised(tiny, tmp_path):
    model = make(FREEDOM, tiny, tmp_path, edge_dropout=0.8)
    n_edges = tiny.splits["train"].nnz
    model.pre_epoch()
    edges, dense = kept_edges(model)
    assert len(edges) == int(n_edges * (1.0 - 0.8)) == model.n_kept_edges()
    assert model.masked_adj.values().numel() == 2 * len(edges)
    train = tiny.splits["train"].toarray()
    assert all(train[u, i] for u, i in edges)
    np.testing.assert_array_equal(dense, dense.T)
    # the kept graph is re-normalised by its own degrees (+1e-7), as MMRec's _normalize_adj_m
    block = (dense[: tiny.n_users, tiny.n_users:] > 0).astype(np.float64)
    expected = block * ((block.sum(1, keepdims=True) + 1e-7) ** -0.5) * ((block.sum(0, keepdims=True) + 1e-7) ** -0.5)
    np.testing.assert_allclose(dense[: tiny.n_users, tiny.n_users:], expected, rtol=1e-5)


def test_freedom_pruning_is_reproducible_and_resumable(tiny, tmp_path):
    a = make(FREEDOM, tiny, tmp_path, seed=0, edge_dropout=0.8)
    b = make(FREEDOM, tiny, tmp_path, seed=0, edge_dropout=0.8)
    draws = []
    for _ in range(3):
        a.pre_epoch()
        b.pre_epoch()
        draws.append(kept_edges(a)[0])
        assert draws[-1] == kept_edges(b)[0]
    assert draws[0] != draws[1] != draws[2]
    # the generator's state is in state_dict(): a model loaded from a checkpoint continues the sequence
    state = {k: v.clone() for k, v in a.state_dict().items()}
    a.pre_epoch()
    c = FREEDOM(BeFAConfig(cache_dir=str(tmp_path / "cache"), edge_dropout=0.8, seed=12345), tiny)
    c.load_state_dict(state)
    torch.manual_seed(777)  # the global RNG plays no part in the pruning
    c.pre_epoch()
    assert kept_edges(c)[0] == kept_edges(a)[0]


def test_sampling_above_the_multinomial_limit():
    """The exponential race used past torch.multinomial's 2^24 categories: n distinct, weight-driven draws."""
    weights = torch.ones(1000)
    weights[:5] = 1e6
    draws = [sample_without_replacement(weights, 50, torch.Generator().manual_seed(s), max_categories=10)
             for s in (0, 0, 1)]
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])
    for d in draws:
        assert d.unique().numel() == 50 and set(range(5)) <= set(d.tolist())


# -------------------------------------------------------------------------------------------- adapters
@pytest.mark.parametrize("name", list(MODELS))
def test_adapter_off_is_the_exact_base(name, tiny, tmp_path):
    cls, modalities = MODELS[name]
    off = make(cls, tiny, tmp_path, seed=7, adapter=False, reg_weight=0.1)
    on = make(cls, tiny, tmp_path, seed=7, adapter=True, layer_times=2, reg_weight=0.1)
    assert all(isinstance(a, nn.Identity) for a in off.adapters.values())
    base_off, base_on = base_state(off), base_state(on)
    assert base_off.keys() == base_on.keys()
    assert all(torch.equal(base_off[k], base_on[k]) for k in base_off)
    assert n_parameters(on) - n_parameters(off) == len(modalities) * adapter_parameters(64, 2)
    assert list(on.adapters) == modalities
    # the adapter-on model with its adapters taken out computes exactly the base loss
    args = batch(tiny)
    off.pre_epoch()
    on.pre_epoch()
    loss_on_raw = on.loss(*args)
    for m in modalities:
        on.adapters[m] = nn.Identity()
    loss_off, loss_stripped = off.loss(*args), on.loss(*args)
    assert all(torch.equal(loss_off[k], loss_stripped[k]) for k in loss_off)
    # ... and with them in, the outputs change
    if name == "vbpr":
        assert not torch.allclose(loss_on_raw["total"], loss_off["total"])
    else:  # FREEDOM's scores do not read the projected features: only the modality BPR terms change
        assert torch.equal(loss_on_raw["bpr"], loss_off["bpr"])
        assert all(not torch.allclose(loss_on_raw[f"bpr_{m}"], loss_off[f"bpr_{m}"]) for m in modalities)


def test_vbpr_adapter_changes_the_item_embeddings(tiny, tmp_path):
    off = make(VBPR, tiny, tmp_path, seed=7, adapter=False).eval()
    on = make(VBPR, tiny, tmp_path, seed=7, adapter=True).eval()
    (u_off, i_off), (u_on, i_on) = off.embeddings(), on.embeddings()
    assert torch.equal(u_off, u_on) and torch.equal(i_off[:, :64], i_on[:, :64])
    assert not torch.allclose(i_off[:, 64:], i_on[:, 64:])
    assert ((i_on[:, 64:] > 0) & (i_on[:, 64:] < 1)).all()  # the adapter's sigmoid output


# -------------------------------------------------------------------------------------------- training
@pytest.mark.parametrize("name,batch_size,epochs", [("vbpr", 256, 6), ("freedom", 512, 8)])
def test_short_training_beats_popularity_by_half_again(name, batch_size, epochs, smoke, tmp_path):
    model = make(MODELS[name][0], smoke, tmp_path, seed=0, adapter=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    sampler = BPRSampler(smoke.train_users, smoke.train_items, smoke.n_items, batch_size=batch_size, seed=0)
    for _ in range(epochs):
        model.train()
        model.pre_epoch()
        for users, pos, neg in sampler.epoch():
            loss = model.loss(users, pos, neg)["total"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        users_emb, items_emb = model.embeddings()
    got = evaluate_full_ranking(lambda u: users_emb[u] @ items_emb.T, smoke.eval_batches("valid"), (20,))
    pop = popularity_baseline(smoke.item_popularity(), smoke.eval_batches("valid"), (20,))
    assert got["recall@20"] >= 1.5 * pop["recall@20"], (got, pop)
