"""Module shapes against the spec (B3), Query Punishment semantics, the fused BiLSTM, init and parameter counts."""

import math

import pytest
import torch
import torch.nn.functional as F

from dualvgr.bilstm import bilstm_final_states
from dualvgr.encoders import QuestionEncoder, dropped_tanh_time_major
from dualvgr.graph import PunishedGAT
from dualvgr.losses import dualvgr_loss
from dualvgr.model import DualVGR, count_parameters


def _inputs(b=4, n=8, length=7, vocab=20, dim=2048, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([7, 3, 5, 1])[:b]
    question = torch.randint(2, vocab, (b, length), generator=g) * (torch.arange(length) < lengths[:, None])
    return torch.randn(b, n, 16, dim, generator=g), torch.randn(b, n, dim, generator=g), question, lengths


def test_full_size_shapes_on_cpu():
    """B=4, N=8, L=7 at the paper's sizes (d=768, 2048-d features), on the CPU: the official code could not run
    here (hard-coded cuda:1, spec B6.2)."""
    torch.manual_seed(0)
    model = DualVGR(vocab_size=20, num_answers=11, unit_layers=2).eval()
    app, mot, q, qlen = _inputs()
    with torch.no_grad():
        logits, trace = model(app, mot, q, qlen)
    assert logits.shape == (4, 11)
    for name in ("specific_app", "common_app", "specific_mot", "common_mot"):
        assert [t.shape for t in getattr(trace, name)] == [(4, 8, 768)] * 2
    for s in trace.punish_app + trace.punish_mot:
        assert s.shape == (4, 8, 1) and ((s >= 0) & (s <= 1)).all() and s.std() > 0.1  # sigmoid (may saturate)
    for w in trace.view_app + trace.view_mot:
        assert w.shape == (4, 2, 8, 1) and torch.allclose(w.sum(1), torch.ones(4, 8, 1))
    for beta in trace.word_attention:  # masked beyond each length; renormalised with +1e-5 (sums just under 1)
        assert (beta[torch.arange(7) >= qlen[:, None]] == 0).all()
        assert ((beta.sum(1) < 1) & (beta.sum(1) > 1 - 1e-4)).all()


@pytest.mark.parametrize("units, expected", [(1, 21_218_578), (2, 25_823_523), (3, 30_428_468)])
def test_parameter_counts_equal_the_spec(units, expected):
    """Spec B3: 21.22M / 25.82M / 30.43M without the embedding and the last classifier layer."""
    model = DualVGR(vocab_size=8000, num_answers=4002, unit_layers=units)
    assert count_parameters(model) == expected
    assert sum(p.numel() for p in model.parameters()) == expected + 300 * 8000 + 769 * 4002
    assert len(model.units) == units  # unit_layers is honoured (the official training always built 2; B6.1)


def _official_gat(gat: PunishedGAT, x: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """punishGAT written out as the official code computes it (eval mode): per head the [g_i; g_j] pairs."""
    b, n, _ = x.shape
    heads = []
    for h in range(gat.heads):
        rows = slice(h * gat.head_dim, (h + 1) * gat.head_dim)
        g = F.linear(x, gat.proj.weight[rows], gat.proj.bias[rows])
        pairs = torch.cat([g.unsqueeze(2).expand(b, n, n, -1), g.unsqueeze(1).expand(b, n, n, -1)], dim=-1)
        a = torch.cat([gat.attn_src[h], gat.attn_dst[h]])
        e = F.leaky_relu(pairs @ a + gat.attn_bias[h], 0.01)
        heads.append(F.elu(torch.bmm(e.softmax(-1), g * scores)))
    return torch.cat(heads, dim=-1)


def test_gat_equals_the_official_pairwise_form_and_punishment_scales_messages():
    torch.manual_seed(0)
    gat = PunishedGAT(dim=16, heads=4).eval()
    x, s = torch.randn(2, 5, 16), torch.rand(2, 5, 1)
    out = gat(x, s)
    assert torch.allclose(out, _official_gat(gat, x, s), atol=1e-6)
    # the scores multiply the messages g_j = W x_j + b, not the features x_j ...
    assert not torch.allclose(out, gat(x * s, torch.ones_like(s)), atol=1e-4)
    # ... and not the attention: silencing clip 0 removes its message but the others keep their weights
    silenced = s.clone()
    silenced[:, 0] = 0
    g = gat.proj(x).view(2, 5, 4, 4).transpose(1, 2)
    alpha = gat.attention(g).softmax(-1)
    expected = F.elu(alpha[..., 1:] @ (g[:, :, 1:] * silenced[:, None, 1:])).transpose(1, 2).reshape(2, 5, 16)
    assert torch.allclose(gat(x, silenced), expected, atol=1e-6)
    assert torch.allclose(gat(x, torch.zeros_like(s)), torch.zeros(2, 5, 16))


def test_bilstm_final_states_equals_nn_lstm_values_and_gradients():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(12, 5, bidirectional=True).double()
    x = torch.randn(6, 4, 12, dtype=torch.double, requires_grad=True)  # time-major, as nn.LSTM
    ours = bilstm_final_states(x, lstm)
    h_n = lstm(x)[1][0]
    ref = torch.cat([h_n[0], h_n[1]], -1)
    assert torch.allclose(ours, ref, atol=1e-12)
    w = torch.randn_like(ref)
    grads = [torch.autograd.grad((y * w).sum(), [x, *lstm.parameters()]) for y in (ours, ref)]
    assert all(torch.allclose(a, b, atol=1e-12) for a, b in zip(*grads))
    y = bilstm_final_states(x, lstm).sum()
    y.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):  # spent buffers: no silent reuse
        y.backward()


def test_dropped_tanh_time_major_is_tanh_of_dropout_per_clip():
    frames = torch.randn(3, 4, 5, 6000)
    eval_x = dropped_tanh_time_major(frames, 0.15, training=False)
    assert torch.equal(eval_x, torch.tanh(frames).reshape(12, 5, 6000).transpose(0, 1))
    torch.manual_seed(0)
    x = dropped_tanh_time_major(frames, 0.15, training=True)
    kept = x != 0
    assert abs(kept.float().mean().item() - 0.85) < 0.005  # 360k draws: 5 sigma is 0.003
    assert torch.allclose(x[kept], torch.tanh(frames / 0.85).reshape(12, 5, 6000).transpose(0, 1)[kept])
    torch.manual_seed(0)
    assert torch.equal(x, dropped_tanh_time_major(frames, 0.15, training=True))


def test_question_encoder_ignores_padding():
    torch.manual_seed(0)
    enc = QuestionEncoder(vocab_size=30, word_dim=8, module_dim=6).eval()
    q = torch.tensor([[5, 6, 7, 0, 0], [8, 9, 0, 0, 0]])
    wider = F.pad(q, (0, 3))
    with torch.no_grad():
        (_, tok, sent), (_, tok2, sent2) = enc(q, torch.tensor([3, 2])), enc(wider, torch.tensor([3, 2]))
    assert torch.allclose(sent, sent2) and torch.allclose(tok, tok2[:, :5]) and (tok2[:, 3:] == 0).all()
    assert (tok[1, 2:] == 0).all() and tok.shape == (2, 5, 6)


def test_every_gat_branch_gets_gradients_from_the_full_loss():
    torch.manual_seed(0)
    model = DualVGR(vocab_size=20, num_answers=5, unit_layers=2, vision_dim=24, module_dim=16, word_dim=8)
    app, mot, q, qlen = _inputs(dim=24)
    logits, trace = model(app, mot, q, qlen)
    dualvgr_loss(logits, torch.tensor([0, 1, 2, 3]), trace)[0].backward()
    for unit in model.units:
        for gat in (unit.gat_app, unit.gat_common_app, unit.gat_mot, unit.gat_common_mot):
            assert gat.proj.weight.grad.abs().sum() > 0 and gat.attn_src.grad.abs().sum() > 0


def test_official_initialisation():
    """xavier_uniform (gain 1) on every Linear/LSTM weight, zero biases; GAT per head; embedding U(-1, 1)."""
    torch.manual_seed(0)
    model = DualVGR(vocab_size=50, num_answers=7, unit_layers=1)
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            bound = math.sqrt(6 / (m.in_features + m.out_features))
            assert m.weight.abs().max() <= bound and m.weight.abs().max() > 0.9 * bound
            assert m.bias is None or (m.bias == 0).all()
    gat = model.units[0].gat_app
    assert gat.proj.weight.abs().max() <= math.sqrt(6 / (768 + 192)) and (gat.attn_bias == 0).all()
    assert gat.attn_src.abs().max() <= math.sqrt(6 / 385)
    lstm = model.appearance_encoder.lstm
    assert lstm.weight_ih_l0.abs().max() <= math.sqrt(6 / (2048 + 4 * 384)) and (lstm.bias_hh_l0 == 0).all()
    emb = model.question_encoder.embed.weight
    assert emb.min() >= -1 and emb.max() <= 1 and emb.std() > 0.5


def test_appearance_lstm_runs_nn_lstm_by_default_and_the_hand_written_kernel_only_when_asked(monkeypatch):
    """The default ``nn`` runs ``nn.LSTM``'s kernel (oneDNN on CPU, cuDNN on CUDA) on every device; ``fused`` runs
    the hand-written one; both give the same output."""
    import dualvgr.encoders as encoders

    enc = DualVGR(20, 5, module_dim=8, vision_dim=6, word_dim=4).appearance_encoder
    assert enc.lstm_path == "nn"
    with pytest.raises(ValueError, match="lstm_path"):
        encoders.AppearanceEncoder(6, 8, "cudnn")
    calls = []
    real = encoders.bilstm_final_states
    monkeypatch.setattr(encoders, "bilstm_final_states", lambda x, lstm: calls.append(1) or real(x, lstm))
    frames = torch.randn(2, 3, 4, 6)
    enc.eval()
    out = {path: (setattr(enc, "lstm_path", path), enc(frames))[1] for path in ("nn", "fused")}
    assert calls == [1]  # nn: not the hand-written kernel; fused: it
    assert torch.allclose(out["nn"], out["fused"], atol=1e-6)
