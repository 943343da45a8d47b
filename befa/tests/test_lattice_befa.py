"""``lattice_befa`` is the official ``LATTICE_BeFA`` (fqldom/BeFA): its parameters, its loss terms, its forward
written out from the official formulas, and a short run that learns with the adapter on."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from official_equivalence import official_name

from befa.config import load_config
from befa.experiment import train_one
from befa.train import build_model, load_data
from common.metrics.ranking import popularity_baseline
from common.synthetic import mmrec as synthetic_mmrec

D = 64


def official_parameters(n_users, n_items, dv, dt, t=1):
    """(name, shape) of every parameter LATTICE_BeFA.__init__ creates, in its creation order (read from its source)."""
    befa = [("0.weight", (t * D, D)), ("0.bias", (t * D,)), ("4.weight", (t * D, t * D)), ("4.bias", (t * D,)),
            ("7.weight", (D, t * D)), ("7.bias", (D,))]
    return [("user_embedding.weight", (n_users, D)), ("item_id_embedding.weight", (n_items, D)),
            ("image_embedding.weight", (n_items, dv)), ("text_embedding.weight", (n_items, dt)),
            ("image_trs.weight", (D, dv)), ("image_trs.bias", (D,)), ("text_trs.weight", (D, dt)),
            ("text_trs.bias", (D,)), ("query_common.0.weight", (D, D)), ("query_common.0.bias", (D,)),
            ("query_common.2.weight", (1, D)),
            *[(f"BeFA_v.{n}", s) for n, s in befa], *[(f"BeFA_t.{n}", s) for n, s in befa]]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return synthetic_mmrec.write(tmp_path_factory.mktemp("d") / "tiny", seed=1, n_users=150, n_items=90,
                                 image_dim=48, text_dim=24)


def make(tiny, **overrides):
    config = load_config(None, data=str(tiny), dataset="tiny", cache_dir="", model="lattice_befa",
                         train_batch_size=64, **overrides)
    data = load_data(config)
    torch.manual_seed(0)
    return build_model(config, data), data


@pytest.mark.parametrize("t", [1, 2])
def test_parameters_are_the_official_models_in_its_creation_order(tiny, t):
    model, data = make(tiny, layer_times=t)
    ours = [(official_name(n), tuple(p.shape)) for n, p in model.named_parameters()]
    assert ours == official_parameters(data.n_users, data.n_items, 48, 24, t)
    assert not any("fuser" in n or "preference" in n for n, _ in model.named_parameters())  # no MGCN fuser


def test_forward_and_loss_are_the_official_formulas(tiny):
    model, data = make(tiny, reg_weight=1e-3, cl_loss=0.5)
    model.eval()  # dropout off, so the reference below sees the same adapter outputs
    a = model.norm_adj.to_dense()
    n_users = data.n_users
    ui = (a[:n_users, n_users:])
    ego = torch.cat([model.user_embedding.weight, model.item_id_embedding.weight])
    content = torch.stack([ego, a @ ego, a @ a @ ego]).mean(0)
    views = []
    for m in ("image", "text"):
        items = model.item_id_embedding.weight * model.adapters[m](model.trs[m](model.features[m]))
        items = getattr(model, f"item_graph_{m}").to_dense() @ items
        views.append(torch.cat([ui @ items, items]))
    final = content + (views[0] + views[1]) / 2
    users, items = model()
    torch.testing.assert_close(torch.cat([users, items]), final, rtol=1e-5, atol=1e-6)
    u, p, n = torch.arange(8), torch.arange(8), torch.arange(8, 16)
    parts = model.loss(u, p, n)
    eu, ep, en = users[u], items[p], items[n]
    bpr = -F.logsigmoid((eu * ep).sum(1) - (eu * en).sum(1)).mean()
    reg = 1e-3 * 0.5 * (eu.pow(2).sum() + ep.pow(2).sum() + en.pow(2).sum()) / 64
    assert set(parts) == {"bpr", "reg", "total"}  # no InfoNCE: cl_loss is read by the official code but unused
    torch.testing.assert_close(parts["bpr"], bpr)
    torch.testing.assert_close(parts["reg"], reg)
    torch.testing.assert_close(parts["total"], bpr + reg)


def test_adapter_off_leaves_the_projection_gating_the_id_embedding(tiny):
    off, _ = make(tiny, adapter=False)
    assert not any(n.startswith("adapters.") for n, _ in off.named_parameters())
    assert torch.equal(off.projected("image"), off.trs["image"](off.features["image"]))


@pytest.mark.parametrize("adapter", [True, False])
def test_short_training_beats_popularity(tmp_path, adapter):
    data_dir = synthetic_mmrec.write(tmp_path / "smoke", seed=0)
    config = load_config(None, data=str(data_dir), dataset="smoke", cache_dir="", synthetic=True,
                         model="lattice_befa", adapter=adapter, train_batch_size=256, epochs=6)
    data = load_data(config)
    result = train_one(config, tmp_path / "run", data=data)
    pop = popularity_baseline(data.item_popularity(), data.eval_batches("valid"), (20,))["recall@20"]
    assert result["valid"]["recall@20"] >= 1.5 * pop, (result["valid"]["recall@20"], pop)
