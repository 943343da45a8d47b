"""Soft targets, conditions, C-Net and the equality of one-step inference with one reverse step."""

import numpy as np
import pytest
import torch

from ld4mrec.cnet import CNet, degree_normalised, svd_user_factors, timestep_embedding
from ld4mrec.config import load_config
from ld4mrec.model import soft_target
from ld4mrec.train import build_model, load_data


def test_label_smoothing_soft_target_equation():
    x0 = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    all_rows = soft_target(x0, "label_smoothing", p=1.0, gamma=0.1)
    assert torch.allclose(all_rows, torch.tensor([[0.9, 0.1, 0.9], [0.1, 0.9, 0.1]]))
    assert torch.equal(soft_target(x0, "label_smoothing", p=0.0, gamma=0.1), x0)
    assert torch.equal(soft_target(x0, "none", p=1.0, gamma=0.1), x0)
    g = torch.Generator().manual_seed(0)
    big = torch.zeros(20_000, 2)
    softened = (soft_target(big, "label_smoothing", p=0.3, gamma=0.2, generator=g)[:, 0] > 0).float().mean()
    assert softened.item() == pytest.approx(0.3, abs=0.02)  # each row softened with probability p


def test_self_soft_target_mixes_in_the_detached_prediction():
    x0 = torch.tensor([[1.0, 0.0]])
    pred = torch.tensor([[0.5, 0.8]], requires_grad=True)
    target = soft_target(x0, "self", p=1.0, gamma=0.25, prediction=pred)
    assert torch.allclose(target, torch.tensor([[0.875, 0.2]]))
    assert not target.requires_grad


def test_timestep_embedding_is_cos_then_sin():
    emb = timestep_embedding(torch.tensor([0, 3]), 4)
    assert torch.allclose(emb[0], torch.tensor([1.0, 1.0, 0.0, 0.0]))
    assert emb[1, 0].item() == pytest.approx(np.cos(3.0)) and emb[1, 2].item() == pytest.approx(np.sin(3.0))


def test_modality_preference_is_degree_normalised_aggregate(tiny_data, tmp_path):
    config = load_config(None, data=str(tiny_data), dataset="tiny", use_collaborative=False)
    data = load_data(config)
    train = data.splits["train"]
    norm = degree_normalised(train).toarray()
    du, di = np.asarray(train.sum(1)).ravel(), np.asarray(train.sum(0)).ravel()
    u, i = train.nonzero()
    assert np.allclose(norm[u, i], 1 / np.sqrt(du[u] * di[i]))
    model = build_model(config, data)
    users = torch.tensor([0, 5, 7])
    cond = model.conditions(users)
    feats = data.features["image_feat"]
    want = torch.from_numpy(norm[[0, 5, 7]] @ feats).float()
    assert torch.allclose(cond[:, :64], model.conditions.modal_proj["image"](want), atol=1e-5)


def test_svd_factors_give_the_best_rank_k_reconstruction(tiny_data):
    train = load_data(load_config(None, data=str(tiny_data), dataset="tiny")).splits["train"]
    factors = svd_user_factors(train, 8, seed=0).double().numpy()
    u, s, _ = np.linalg.svd(train.toarray())
    assert np.allclose(np.linalg.norm(factors, axis=0), s[:8], rtol=1e-6)
    assert np.allclose(np.abs(factors), np.abs(u[:, :8] * s[:8]), atol=1e-5)


def test_ablations_remove_their_condition(tiny_data):
    base = dict(data=str(tiny_data), dataset="tiny")
    data = load_data(load_config(None, **base))
    dims = {k: build_model(load_config(None, **base, **v), data).conditions.dim for k, v in {
        "full": {}, "no_collab": {"use_collaborative": False}, "no_modal": {"use_modality": False},
        "none": {"use_collaborative": False, "use_modality": False}}.items()}
    assert dims == {"full": 192, "no_collab": 128, "no_modal": 64, "none": 0}


def test_one_step_inference_equals_one_reverse_step(tiny_data):
    config = load_config(None, data=str(tiny_data), dataset="tiny")
    data = load_data(config)
    model = build_model(config, data).eval()
    users = torch.arange(20)
    one = model.predict(users, reverse_steps=0)
    rev = model.predict(users, reverse_steps=1)
    assert torch.allclose(one, rev, atol=1e-6)
    assert torch.equal(one.topk(10).indices, rev.topk(10).indices)
    assert not torch.allclose(one, model.predict(users, reverse_steps=5), atol=1e-6)


def test_cnet_output_shape_and_dropout_only_in_training():
    net = CNet(n_items=30, hidden=16, time_dim=10, cond_dim=8, dropout=0.5)
    x, t, c = torch.rand(4, 30), torch.tensor([0, 1, 2, 3]), torch.rand(4, 8)
    assert net(x, t, c).shape == (4, 30)
    net.eval()
    assert torch.equal(net(x, t, c), net(x, t, c))
