"""Modules and losses of MGCN against the paper's equations and hand-computed values."""

import math

import pytest
import torch

from mvgcn.config import MGCNConfig
from mvgcn.losses import bpr_loss, embedding_regulariser, info_nce
from mvgcn.model import BehaviorAwareFuser, BehaviorGuidedPurifier
from mvgcn.train import build_model, load_data

G = torch.Generator().manual_seed(0)


def test_purifier_gates_item_id_embedding_with_projected_features():
    p = BehaviorGuidedPurifier(feature_dim=6, dim=4)
    feats, ids = torch.randn(3, 6, generator=G), torch.randn(3, 4, generator=G)
    want = ids * torch.sigmoid(p.gate(p.project(feats)))
    assert torch.allclose(p(feats, ids), want)


def test_fuser_attention_sums_to_one_over_modalities_per_node():
    fuser = BehaviorAwareFuser(dim=4, n_modalities=3)
    alpha = fuser.weights(torch.randn(5, 3, 4, generator=G))
    assert alpha.shape == (5, 3)
    assert torch.allclose(alpha.sum(1), torch.ones(5))
    assert not torch.allclose(alpha, torch.full_like(alpha, 1 / 3))  # input-dependent


def test_official_and_paper_fusion_differ_exactly_as_specified():
    official = BehaviorAwareFuser(dim=4, n_modalities=2, fusion="official")
    paper = BehaviorAwareFuser(dim=4, n_modalities=2, fusion="paper")
    paper.load_state_dict(official.state_dict())
    modal, behaviour = torch.randn(6, 2, 4, generator=G), torch.randn(6, 4, generator=G)
    common = (official.weights(modal).unsqueeze(-1) * modal).sum(1)
    gated = sum(torch.sigmoid(official.preference[m](behaviour)) * (modal[:, m] - common) for m in range(2))
    assert torch.allclose(official(modal, behaviour), (common + gated) / 3, atol=1e-6)
    assert torch.allclose(paper(modal, behaviour), common + gated / 2, atol=1e-6)


def test_fuser_without_attention_uses_the_modality_mean_as_common_part():
    fuser = BehaviorAwareFuser(dim=4, n_modalities=2, attention=False)
    assert torch.allclose(fuser.weights(torch.randn(3, 2, 4)), torch.full((3, 2), 0.5))


def test_info_nce_equals_hand_computed_value():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    tau = 0.2
    c = 1 / math.sqrt(2)  # cos(a1, b2) and cos(a2, b2); cos(a1, b1) = 1, cos(a2, b1) = 0
    row1 = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(c / tau)))
    row2 = -math.log(math.exp(c / tau) / (math.exp(0 / tau) + math.exp(c / tau)))
    assert info_nce(a, b, tau).item() == pytest.approx((row1 + row2) / 2, rel=1e-6)


def test_bpr_and_regulariser_hand_computed():
    u, p, n = torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert bpr_loss(u, p, n).item() == pytest.approx(-math.log(1 / (1 + math.exp(1.0))))
    # 0.5 * (5 + 1 + 1) / configured batch size 2048, also for a batch of one
    assert embedding_regulariser(u, p, n, 2048).item() == pytest.approx(3.5 / 2048)


def test_forward_shapes_and_ablation_switches_change_the_output(tiny_data, tmp_path):
    base = dict(data=str(tiny_data), dataset="tiny", cache_dir=str(tmp_path))
    data = load_data(MGCNConfig(**base))
    outputs = {}
    for name, switch in [("full", {}), ("no_purifier", {"use_purifier": False}),
                         ("no_item_item", {"use_item_item_view": False}),
                         ("no_attention", {"use_fuser_attention": False})]:
        torch.manual_seed(0)
        model = build_model(MGCNConfig(**base, **switch), data)
        final, fused, behaviour = model()
        assert final.shape == (data.n_users + data.n_items, 64)
        assert torch.allclose(final, behaviour + fused)
        outputs[name] = final.detach()
    for name in ("no_purifier", "no_item_item", "no_attention"):
        assert not torch.allclose(outputs[name], outputs["full"]), name


def test_sparse_propagation_and_its_gradients_equal_dense_matmul(tiny_data, tmp_path):
    config = MGCNConfig(data=str(tiny_data), dataset="tiny", cache_dir=str(tmp_path))
    torch.manual_seed(0)
    model = build_model(config, load_data(config))
    x = torch.randn(model.n_users + model.n_items, 8, requires_grad=True)
    dense = model.norm_adj.to_dense()
    w = torch.randn(model.n_users + model.n_items, 8)
    (torch.sparse.mm(model.norm_adj, x) * w).sum().backward()
    got = x.grad.clone()
    x.grad = None
    ((dense @ x) * w).sum().backward()
    assert torch.allclose(got, x.grad, atol=1e-5)


def test_stored_transpose_products_equal_autograd_path_bitwise(tiny_data, tmp_path, monkeypatch):
    """The CPU fast path (backward by the stored A^T) gives the plain torch.sparse.mm losses and gradients."""
    import mvgcn.model
    import mvgcn.sparse

    config = MGCNConfig(data=str(tiny_data), dataset="tiny", cache_dir=str(tmp_path), cl_loss=0.1)
    torch.manual_seed(0)
    model = build_model(config, load_data(config))
    users = torch.randint(0, model.n_users, (64,), generator=G)
    items = torch.randint(0, model.n_items, (128,), generator=G)

    def step():
        model.zero_grad(set_to_none=True)
        total = model.loss(users, items[:64], items[64:])["total"]
        total.backward()
        return total.detach(), {k: p.grad.clone() for k, p in model.named_parameters()}

    calls = []
    stored = mvgcn.sparse._StoredTransposeProduct.apply
    monkeypatch.setattr(mvgcn.sparse._StoredTransposeProduct, "apply",
                        staticmethod(lambda *a: calls.append(1) or stored(*a)))
    torch.use_deterministic_algorithms(True)  # index_put_'s accumulation order is otherwise run-dependent
    try:
        fast_loss, fast_grads = step()
        monkeypatch.setattr(mvgcn.model, "graph_product", lambda adj, dense, adj_t=None: torch.sparse.mm(adj, dense))
        plain_loss, plain_grads = step()
    finally:
        torch.use_deterministic_algorithms(False)
    assert len(calls) == 2 + 2 * 2  # two U-I layers, one item-item layer and the user block per modality
    assert torch.equal(fast_loss, plain_loss)
    for name, grad in plain_grads.items():
        assert torch.equal(fast_grads[name], grad), name
