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


def _built(tiny_data, **changes):
    config = load_config(None, data=str(tiny_data), dataset="tiny", **changes)
    data = load_data(config)
    torch.manual_seed(0)
    return build_model(config, data).eval(), data


@pytest.mark.parametrize("switch, removed, kept_columns", [
    ({"use_collaborative": False}, {"conditions.collab_proj.weight", "conditions.collab_proj.bias"}, slice(64, 192)),
    ({"use_modality": False}, {f"conditions.modal_proj.{m}.{p}" for m in ("image", "text") for p in ("weight", "bias")},
     slice(0, 64)),
])
def test_condition_switch_removes_exactly_that_condition(tiny_data, switch, removed, kept_columns):
    """Parameter lists differ by the condition's projection only, and the ablated model computes what the full
    model computes with that projection zeroed (the guidance layers keep the other conditions' columns)."""
    full, _ = _built(tiny_data)
    ablated, _ = _built(tiny_data, **switch)
    full_params, ablated_params = dict(full.named_parameters()), dict(ablated.named_parameters())
    assert set(full_params) - set(ablated_params) == removed and set(ablated_params) <= set(full_params)
    with torch.no_grad():
        for name, param in ablated_params.items():
            source = full_params[name]
            param.copy_(source[:, kept_columns] if param.shape != source.shape else source)
        for name in removed:
            full_params[name].zero_()
    users = torch.arange(40)
    assert torch.allclose(full.predict(users), ablated.predict(users), atol=1e-5)
    assert torch.allclose(full.predict(users, 3), ablated.predict(users, 3), atol=1e-5)


def _loss(model, users, seed=0):
    torch.manual_seed(seed)  # C-Net dropout
    return model.loss(users, torch.Generator().manual_seed(seed))


def test_no_soft_target_is_the_full_objective_with_gamma_zero(tiny_data):
    """``soft_target: none`` removes the soft target only: same parameters, and the loss of the full model
    whose smoothing intensity is zeroed, where the default soft target changes the loss."""
    hard, _ = _built(tiny_data, soft_target="none")
    soft, _ = _built(tiny_data)
    assert [n for n, _ in hard.named_parameters()] == [n for n, _ in soft.named_parameters()]
    users = torch.arange(64)
    hard.train(), soft.train()
    soft_loss = _loss(soft, users)
    soft.config.soft_gamma = 0.0
    zeroed = _loss(soft, users)
    assert _loss(hard, users).item() == pytest.approx(zeroed.item(), rel=1e-6)
    assert abs(soft_loss.item() - zeroed.item()) > 1e-4


def test_one_step_training_regresses_the_clean_vector_at_t_in_without_diffusion(tiny_data):
    """``objective: one_step``: same parameters; the loss is ||f(x_u, t_in, c_u) - x~_0||^2 (hard target here),
    with no noise, no timestep sampling and no update of the importance sampler."""
    model, _ = _built(tiny_data, objective="one_step", soft_target="none", t_in=2)
    full, _ = _built(tiny_data)
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in full.named_parameters()]
    users = torch.arange(64)
    x0 = model.behaviour(users)
    want = (model.cnet(x0, torch.full((64,), 2), model.conditions(users)) - x0).pow(2).mean()
    assert model.loss(users, torch.Generator().manual_seed(0)).item() == pytest.approx(want.item(), rel=1e-6)
    assert model.diffusion.loss_count.sum() == 0
    full.loss(users, torch.Generator().manual_seed(0))
    assert full.diffusion.loss_count.sum() > 0  # the diffusion objective does record its losses


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
