"""LGMRec and BM3 (MMRec ``src/models/lgmrec.py``, ``bm3.py``) against references written from MMRec's formulas,
the BeFA adapter switch and insertion points, and short training runs, on SYNTHETIC data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from model_checks import base_state, batch, fill_known, n_parameters, numpy_params

from befa.adapter import adapter_parameters
from befa.config import BeFAConfig, load_config
from befa.models.bm3 import BM3
from befa.models.lgmrec import LGMRec
from befa.train import load_data, trainer
from common.data.mmrec import load_mmrec
from common.metrics.ranking import popularity_baseline
from common.synthetic import mmrec as synthetic_mmrec


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = synthetic_mmrec.write(tmp_path_factory.mktemp("data") / "tiny", seed=1, n_users=150, n_items=90,
                                 image_dim=48, text_dim=24)
    return load_mmrec(root)


def make(cls, data, seed=0, **overrides):
    torch.manual_seed(seed)
    return cls(BeFAConfig(cache_dir="", device="cpu", **overrides), data)


def normalize(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def cosine(a, b):
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-8)


def dense_graphs(data):
    """MMRec's R (U x I, value 1), D^-1/2 A D^-1/2 with D = degree + 1e-7, and 1 / (deg_u + 1e-7), in float64."""
    r = (data.splits["train"].toarray() > 0).astype(np.float64)
    n_u, n_i = r.shape
    a = np.zeros((n_u + n_i,) * 2)
    a[:n_u, n_u:], a[n_u:, :n_u] = r, r.T
    d = (a.sum(1) + 1e-7) ** -0.5
    return r, d[:, None] * a * d[None, :], 1.0 / (r.sum(1, keepdims=True) + 1e-7)


def lightgcn_mean(norm_adj, ego, layers):
    out = [ego]
    for _ in range(layers):
        out.append(norm_adj @ out[-1])
    return np.mean(out, axis=0)


def dropout_masks(shapes, p):
    """The masks F.dropout draws for these shapes, in this order, from the global RNG (0 or 1/(1-p))."""
    return [F.dropout(torch.ones(s), p).double().numpy() for s in shapes]


# ------------------------------------------------------------------------------------------------ LGMRec
def test_lgmrec_init_is_mmrecs(tiny):
    """nn.Embedding U and I (xavier_uniform), then per modality (image first) W_m [d_m, d] and V_m [d_m, H]."""
    for adapter in (False, True):
        model = make(LGMRec, tiny, seed=3, embedding_size=8, hyper_num=5, adapter=adapter)
        torch.manual_seed(3)
        user, item = nn.Embedding(tiny.n_users, 8), nn.Embedding(tiny.n_items, 8)
        want = [nn.init.xavier_uniform_(user.weight), nn.init.xavier_uniform_(item.weight)]
        for dim in (48, 24):
            want += [nn.init.xavier_uniform_(torch.zeros(dim, 8)), nn.init.xavier_uniform_(torch.zeros(dim, 5))]
        got = [model.user_embedding.weight, model.item_id_embedding.weight, model.item_image_trs, model.v_hyper,
               model.item_text_trs, model.t_hyper]
        assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True))
        assert not any(b.requires_grad for b in (model.image_features, model.text_features))  # frozen


def lgmrec_reference(model, data, train_mode):
    """MMRec LGMRec ``forward`` in float64, drawing the Gumbel noise (and, in training, the hyperedge dropout
    masks) from the global RNG in MMRec's order; returns (users, items, {m: (Z_u, Z_i)})."""
    p, n_u = numpy_params(model), data.n_users
    r, norm_adj, inv_deg = dense_graphs(data)
    feats = {m: data.features[f"{m}_feat"].astype(np.float64) for m in ("image", "text")}
    names = {"image": ("v_hyper", "item_image_trs"), "text": ("t_hyper", "item_text_trs")}
    hyper = {}
    for m, (hyper_name, _) in names.items():
        item_logits = feats[m] @ p[hyper_name]
        user_logits = r @ item_logits
        g = [-torch.empty(x.shape).exponential_().log().double().numpy() for x in (item_logits, user_logits)]
        hyper[m] = [softmax((item_logits + g[0]) / 0.2), softmax((user_logits + g[1]) / 0.2)]
    ego = np.concatenate([p["user_embedding.weight"], p["item_id_embedding.weight"]])
    cge = lightgcn_mean(norm_adj, ego, model.n_ui_layers)
    local = {}
    for m, (_, trs) in names.items():
        x = feats[m] @ p[trs]
        h = np.concatenate([(r @ x) * inv_deg, x])
        for _ in range(model.n_mm_layers):
            h = norm_adj @ h
        local[m] = h
    glob = {}
    for m in names:
        h_i, h_u = hyper[m]
        if train_mode:
            mask_i, mask_u = dropout_masks([h_i.shape, h_u.shape], model.drop.p)
            h_i, h_u = h_i * mask_i, h_u * mask_u
        z = cge[n_u:]
        for _ in range(model.n_hyper_layer):
            lam = h_i.T @ z
            z, z_u = h_i @ lam, h_u @ lam
        glob[m] = (z_u, z)
    ghe = np.concatenate(glob["image"]) + np.concatenate(glob["text"])
    final = cge + normalize(local["image"]) + normalize(local["text"]) + model.alpha * normalize(ghe)
    return final[:n_u], final[n_u:], glob


def test_lgmrec_loss_and_scores_match_mmrec_formulas(tiny):
    model = make(LGMRec, tiny, embedding_size=4, hyper_num=3, n_hyper_layer=2, keep_rate=0.5, lgmrec_alpha=0.3,
                 lgmrec_cl_weight=0.5, reg_weight=0.1, adapter=False)
    fill_known(model)
    users, pos, neg = batch(tiny)
    torch.manual_seed(11)
    got = model.loss(users, pos, neg)
    torch.manual_seed(11)
    user_all, item_all, glob = lgmrec_reference(model, tiny, train_mode=True)

    def ssl(a, b, all_b):
        a, b, all_b = normalize(a), normalize(b), normalize(all_b)
        return -np.log(np.exp((a * b).sum(1) / 0.2) / np.exp(a @ all_b.T / 0.2).sum(1)).sum()

    u, i, j = user_all[users], item_all[pos], item_all[neg]
    (uv, iv), (ut, it) = glob["image"], glob["text"]
    want = {"bpr": np.logaddexp(0.0, -((u * i).sum(1) - (u * j).sum(1))).mean(),
            "hcl": 0.5 * (ssl(uv[users], ut[users], ut) + ssl(iv[pos], it[pos], it)),
            "reg": 0.1 * (np.linalg.norm(u) + np.linalg.norm(i) + np.linalg.norm(j)) / len(users)}
    want["total"] = sum(want.values())
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key].item() == pytest.approx(value, rel=1e-4), key
    # scores: fresh Gumbel noise, no dropout (eval mode)
    torch.manual_seed(12)
    users_emb, items_emb = model.embeddings()
    torch.manual_seed(12)
    want_u, want_i, _ = lgmrec_reference(model, tiny, train_mode=False)
    assert model.training
    np.testing.assert_allclose(users_emb.detach().numpy(), want_u, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(items_emb.detach().numpy(), want_i, rtol=1e-4, atol=1e-5)


def test_lgmrec_adapter_off_is_exact_base_and_on_sits_in_the_local_encoder(tiny):
    off = make(LGMRec, tiny, seed=7, adapter=False, lgmrec_cl_weight=0.1, reg_weight=0.1)
    on = make(LGMRec, tiny, seed=7, adapter=True, layer_times=2, lgmrec_cl_weight=0.1, reg_weight=0.1)
    assert all(isinstance(a, nn.Identity) for a in off.adapters.values()) and list(on.adapters) == ["image", "text"]
    assert base_state(off).keys() == base_state(on).keys()
    assert all(torch.equal(v, base_state(on)[k]) for k, v in base_state(off).items())
    assert n_parameters(on) - n_parameters(off) == 2 * adapter_parameters(64, 2)

    args = batch(tiny)
    losses = {}
    for name, model in (("off", off), ("on", on)):
        torch.manual_seed(5)
        losses[name] = model.loss(*args)
    assert not torch.allclose(losses["on"]["total"], losses["off"]["total"])
    # eval mode, same seed: the hypergraph branch (raw features) is untouched, the fused embeddings are not
    for model in (off, on):
        model.eval()
    outputs = {}
    for name, model in (("off", off), ("on", on)):
        torch.manual_seed(6)
        outputs[name] = model()
    (u_off, i_off, g_off), (u_on, i_on, g_on) = outputs["off"], outputs["on"]
    assert all(torch.equal(a, b) for m in ("image", "text") for a, b in zip(g_off[m], g_on[m], strict=True))
    assert not torch.allclose(i_on, i_off) and not torch.allclose(u_on, u_off)

    # the adapter's input is f^m W_m (all items), its output is the local encoder's item input
    seen = {}

    class Probe(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            seen[self.m] = x.detach().clone()
            return torch.zeros_like(x)  # zeroing: norm(0) = 0 removes the local modality term

    on.adapters = nn.ModuleDict({m: Probe(m) for m in on.modalities})
    torch.manual_seed(6)
    u_zero, i_zero, _ = on()
    for m, trs in (("image", on.item_image_trs), ("text", on.item_text_trs)):
        assert torch.equal(seen[m], on.features(m) @ trs.detach())
    cge = torch.cat([on.user_embedding.weight, on.item_id_embedding.weight])
    layers = [cge]
    for _ in range(on.n_ui_layers):
        layers.append(torch.sparse.mm(on.norm_adj, layers[-1]))
    cge = torch.stack(layers).mean(0)
    want = cge + on.alpha * F.normalize(torch.cat(g_on["image"]) + torch.cat(g_on["text"]))
    torch.testing.assert_close(torch.cat([u_zero, i_zero]), want)

    # taken out, the adapters leave exactly the base model's loss (same seed, train mode)
    on.train()
    off.train()
    on.adapters = nn.ModuleDict({m: nn.Identity() for m in on.modalities})
    torch.manual_seed(5)
    stripped = on.loss(*args)
    assert all(torch.equal(stripped[k], losses["off"][k]) for k in losses["off"])


# --------------------------------------------------------------------------------------------------- BM3
def test_bm3_init_is_mmrecs(tiny):
    """nn.Embedding U and I (xavier_uniform), predictor Linear (xavier_normal weight), then per modality (image
    first) Linear(d_m, d) with xavier_normal weight; the raw feature tables are trainable copies."""
    for adapter in (False, True):
        model = make(BM3, tiny, seed=3, embedding_size=8, adapter=adapter)
        torch.manual_seed(3)
        user, item = nn.Embedding(tiny.n_users, 8), nn.Embedding(tiny.n_items, 8)
        nn.init.xavier_uniform_(user.weight)
        nn.init.xavier_uniform_(item.weight)
        predictor = nn.Linear(8, 8)
        nn.init.xavier_normal_(predictor.weight)
        image = nn.Linear(48, 8)
        nn.init.xavier_normal_(image.weight)
        text = nn.Linear(24, 8)
        nn.init.xavier_normal_(text.weight)
        want = [user.weight, item.weight, predictor.weight, predictor.bias, image.weight, image.bias, text.weight,
                text.bias]
        got = [model.user_embedding.weight, model.item_id_embedding.weight, model.predictor.weight,
               model.predictor.bias, model.image_trs.weight, model.image_trs.bias, model.text_trs.weight,
               model.text_trs.bias]
        assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True))
        assert model.image_embedding.weight.requires_grad
        assert np.array_equal(model.text_embedding.weight.detach().numpy(), tiny.features["text_feat"])


def test_bm3_loss_and_scores_match_mmrec_formulas(tiny):
    model = make(BM3, tiny, embedding_size=4, n_ui_layers=2, reg_weight=0.1, bm3_cl_weight=2.0, bm3_dropout=0.5,
                 adapter=False)
    fill_known(model)
    users, pos, neg = batch(tiny)
    torch.manual_seed(11)
    got = model.loss(users, pos, neg)

    p = numpy_params(model)
    _, norm_adj, _ = dense_graphs(tiny)
    ego = np.concatenate([p["user_embedding.weight"], p["item_id_embedding.weight"]])
    final = lightgcn_mean(norm_adj, ego, 2)
    h_u, h_i = final[: tiny.n_users], final[tiny.n_users:] + p["item_id_embedding.weight"]
    z = {m: p[f"{m}_embedding.weight"] @ p[f"{m}_trs.weight"].T + p[f"{m}_trs.bias"] for m in ("text", "image")}
    torch.manual_seed(11)  # MMRec's order: users, items, text, image
    masks = dropout_masks([h_u.shape, h_i.shape, z["text"].shape, z["image"].shape], 0.5)
    u_t, i_t, t_t, v_t = h_u * masks[0], h_i * masks[1], z["text"] * masks[2], z["image"] * masks[3]

    def g(x):
        return x @ p["predictor.weight"].T + p["predictor.bias"]

    def neg_cos(a, b):
        return 1 - cosine(a, b).mean()

    cl = (neg_cos(g(z["text"])[pos], i_t[pos]) + neg_cos(g(z["image"])[pos], i_t[pos])
          + neg_cos(g(z["text"])[pos], t_t[pos]) + neg_cos(g(z["image"])[pos], v_t[pos]))
    want = {"ui": neg_cos(g(h_u)[users], i_t[pos]) + neg_cos(g(h_i)[pos], u_t[users]),
            "reg": 0.1 * (np.linalg.norm(h_u) + np.linalg.norm(h_i)) / tiny.n_items,
            "cl": 2.0 * cl}
    want["total"] = sum(want.values())
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key].item() == pytest.approx(value, rel=1e-5), key
    got_u, got_i = model.embeddings()
    np.testing.assert_allclose(got_u.detach().numpy(), g(h_u), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got_i.detach().numpy(), g(h_i), rtol=1e-4, atol=1e-6)


def test_bm3_adapter_off_is_exact_base_and_on_sits_on_the_projections(tiny):
    off = make(BM3, tiny, seed=7, adapter=False, reg_weight=0.1)
    on = make(BM3, tiny, seed=7, adapter=True, layer_times=2, reg_weight=0.1)
    assert all(isinstance(a, nn.Identity) for a in off.adapters.values()) and list(on.adapters) == ["image", "text"]
    assert base_state(off).keys() == base_state(on).keys()
    assert all(torch.equal(v, base_state(on)[k]) for k, v in base_state(off).items())
    assert n_parameters(on) - n_parameters(off) == 2 * adapter_parameters(64, 2)

    args = batch(tiny)
    losses = {}
    for name, model, train in (("off", off, True), ("on", on, True), ("on_eval", on, False)):
        torch.manual_seed(5)
        losses[name] = model.train(train).loss(*args)
    on.train()
    assert not torch.allclose(losses["on"]["total"], losses["off"]["total"])
    # eval mode (the adapters draw no dropout): the same target masks, so only the modality terms change
    assert torch.equal(losses["on_eval"]["ui"], losses["off"]["ui"])
    assert torch.equal(losses["on_eval"]["reg"], losses["off"]["reg"])
    assert not torch.allclose(losses["on_eval"]["cl"], losses["off"]["cl"])
    # the scores do not read the projections
    assert all(torch.equal(a, b) for a, b in zip(off.embeddings(), on.embeddings(), strict=True))

    seen = {}

    class Probe(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            seen[self.m] = x.detach().clone()
            return x

    on.adapters = nn.ModuleDict({m: Probe(m) for m in on.modalities})
    torch.manual_seed(5)
    stripped = on.loss(*args)  # identity probes: exactly the base model's loss
    assert all(torch.equal(stripped[k], losses["off"][k]) for k in losses["off"])
    for m in ("image", "text"):  # their input: W_m f^m + b_m for all items
        assert torch.equal(seen[m], getattr(on, f"{m}_trs")(getattr(on, f"{m}_embedding").weight).detach())


# ---------------------------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory):
    return synthetic_mmrec.write(tmp_path_factory.mktemp("data") / "smoke", seed=0, image_dim=128, text_dim=64)


@pytest.mark.parametrize("model,adapter,batch_size,epochs,extra", [
    ("lgmrec", False, 256, 4, {}),
    ("lgmrec", True, 256, 6, {}),
    ("bm3", False, 256, 7, {"n_ui_layers": 1}),  # MMRec's BM3 grid: n_layers {1, 2}
    ("bm3", True, 128, 8, {"n_ui_layers": 1}),
])
def test_short_training_beats_popularity_by_half_again(model, adapter, batch_size, epochs, extra, smoke_dir,
                                                       tmp_path):
    """The trainer (MMRec semantics), lr 5e-3 (in BeFA's grid): valid Recall@20 >= 1.5 x popularity."""
    config = load_config(None, data=str(smoke_dir), dataset="smoke", cache_dir="", synthetic=True, model=model,
                         adapter=adapter, train_batch_size=batch_size, epochs=epochs, learning_rate=5e-3,
                         device="cpu", **extra)
    data = load_data(config)
    progress = trainer(config, data, tmp_path / "run").fit()
    pop = popularity_baseline(data.item_popularity(), data.eval_batches("valid"), (20,))["recall@20"]
    assert progress.best_valid["recall@20"] >= 1.5 * pop, (progress.best_valid["recall@20"], pop)
