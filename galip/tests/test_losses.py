"""GALIP losses against hand-computed values and a per-sample autograd reference (spec text_to_image.md 2.6;
tobran/GALIP:code/lib/modules.py). Tiny stand-in nets with the official call signatures keep it fast."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from galip.losses import (
    discriminator_loss,
    generator_loss,
    hinge_loss,
    ma_gp,
    mismatch_sent,
)

B, TAPS, CH, HW, D_SENT = 3, 3, 2, 2, 4
N_FEAT = TAPS * CH * HW * HW  # 24 feature values per sample


class LinearD(nn.Module):
    """netD stand-in: mean over the taps, [B, 3, C, H, W] -> [B, C, H, W]."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.mean(1)


class LinearC(nn.Module):
    """netC stand-in: out_i = mean(h_i) + sum(s_i), shaped [B, 1, 1, 1]."""

    def forward(self, h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return (h.mean((1, 2, 3)) + s.sum(1)).view(-1, 1, 1, 1)


class TinyD(nn.Module):
    """Nonlinear netD stand-in with parameters: taps folded into channels, conv3x3 -> LReLU -> conv1x1."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(TAPS * CH, 5, 3, 1, 1, bias=False), nn.LeakyReLU(0.2),
                                 nn.Conv2d(5, 4, 1, bias=False))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h.flatten(1, 2))


class TinyC(nn.Module):
    """Nonlinear netC stand-in shaped like the official NetC: tile s, concat, conv -> LReLU -> conv -> [B,1,1,1]."""

    def __init__(self) -> None:
        super().__init__()
        self.joint_conv = nn.Sequential(nn.Conv2d(4 + D_SENT, 6, 1, bias=False), nn.Tanh(),
                                        nn.Conv2d(6, 1, HW, 1, 0, bias=False))

    def forward(self, h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return self.joint_conv(torch.cat((h, s.view(-1, D_SENT, 1, 1).repeat(1, 1, HW, HW)), 1))


def _feats(values: list[float]) -> torch.Tensor:
    """Per-sample constant features, so mean(LinearD(F)_i) = values[i]."""
    return torch.tensor(values, dtype=torch.float64).view(-1, 1, 1, 1, 1).expand(-1, TAPS, CH, HW, HW).clone()


@pytest.fixture()
def fixed() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    real = _feats([0.5, -0.5, 2.0]).requires_grad_()  # a_i
    fake = _feats([-1.5, 0.0, -3.0]).requires_grad_()
    sent = torch.tensor([[0.25, 0.0, 0.0, 0.0],  # sum b_i = 0.25, 0, -1
                         [1.0, -1.0, 0.0, 0.0],
                         [-1.0, 0.5, -0.5, 0.0]], dtype=torch.float64).requires_grad_()
    return real, fake, sent


def test_hinge_loss_values() -> None:
    out = torch.tensor([-2.0, 0.5, 3.0])
    assert hinge_loss(out, negative=False).item() == pytest.approx((3.0 + 0.5 + 0.0) / 3)
    assert hinge_loss(out, negative=True).item() == pytest.approx((0.0 + 1.5 + 4.0) / 3)


def test_mismatch_is_next_sample() -> None:
    s = torch.arange(12.0).view(3, 4).requires_grad_()
    m = mismatch_sent(s)
    assert torch.equal(m, torch.cat((s[1:], s[0:1]), 0))  # official formula
    assert torch.equal(m[0], s[1]) and torch.equal(m[2], s[0])
    assert not m.requires_grad


def test_discriminator_loss_hand_computed(fixed) -> None:
    real, fake, sent = fixed
    loss = discriminator_loss(LinearD(), LinearC(), real, fake, sent)
    # real logits a_i + b_i = [0.75, -0.5, 1.0] -> relu(1 - x) = [0.25, 1.5, 0]
    assert loss.real.item() == pytest.approx(1.75 / 3)
    # mismatch logits a_i + b_{i+1} = [0.5, -1.5, 2.25] -> relu(1 + x) = [1.5, 0, 3.25]
    # (rolling the other way, b_{i-1}, would give 4.25 / 3)
    assert loss.mis.item() == pytest.approx(4.75 / 3)
    # fake logits [-1.25, 0, -4] -> relu(1 + x) = [0, 1, 0]
    assert loss.fake.item() == pytest.approx(1.0 / 3)
    # linear C: dO/dF = 1/N per element, dO/ds = 1 per element -> ||g||^2 = 1/N + D; L_gp = 2 * (.)^3
    gp = 2.0 * (1.0 / N_FEAT + D_SENT) ** 3
    assert loss.gp.item() == pytest.approx(gp)
    assert loss.total.item() == pytest.approx(1.75 / 3 + (1.0 / 3 + 4.75 / 3) / 2 + gp)
    assert loss.pred_real.flatten().tolist() == pytest.approx([0.75, -0.5, 1.0])
    loss.total.backward()
    assert fake.grad is None  # fake features are detached in the D loss


def test_generator_loss_hand_computed(fixed) -> None:
    _, fake, sent = fixed
    emb = torch.stack((2.0 * sent[0], -sent[1], sent[2])).detach()  # cos = [1, -1, 1]
    loss = generator_loss(LinearD(), LinearC(), fake, emb, sent, sim_w=4.0)
    # fake logits [-1.25, 0, -4], mean -1.75
    assert loss.adv.item() == pytest.approx(-1.75)
    assert loss.sim.item() == pytest.approx(1.0 / 3)
    assert loss.total.item() == pytest.approx(1.75 - 4.0 / 3)
    loss.total.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0  # not detached for G


def _tiny_nets() -> tuple[TinyD, TinyC]:
    torch.manual_seed(0)
    return TinyD().double(), TinyC().double()


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    real = torch.randn(B, TAPS, CH, HW, HW, generator=g, dtype=torch.float64).requires_grad_()
    sent = torch.randn(B, D_SENT, generator=g, dtype=torch.float64).requires_grad_()
    return real, sent


def _ma_gp_reference(netD: nn.Module, netC: nn.Module, real: torch.Tensor, sent: torch.Tensor) -> torch.Tensor:  # noqa: N803
    """Per-sample autograd: g_i = [dC_i/dF_i, dC_i/ds_i], 2 * mean ||g_i||^6."""
    norms = []
    for i in range(real.size(0)):
        fi = real[i:i + 1].detach().requires_grad_()
        si = sent[i:i + 1].detach().requires_grad_()
        out = netC(netD(fi), si).sum()
        gf, gs = torch.autograd.grad(out, (fi, si), create_graph=True)
        norms.append(torch.sqrt(gf.pow(2).sum() + gs.pow(2).sum()))
    return 2.0 * torch.stack(norms).pow(6).mean()


def test_ma_gp_matches_per_sample_autograd() -> None:
    netD, netC = _tiny_nets()  # noqa: N806
    real, sent = _inputs()
    gp = ma_gp(netD, netC, real, sent)
    ref = _ma_gp_reference(netD, netC, real, sent)
    assert gp.item() > 0
    torch.testing.assert_close(gp, ref, rtol=1e-10, atol=0)

    # create_graph: the penalty has parameter gradients, equal to the reference's
    params = list(netD.parameters()) + list(netC.parameters())
    grads = torch.autograd.grad(gp, params)
    ref_grads = torch.autograd.grad(ref, params)
    for g, r in zip(grads, ref_grads, strict=True):
        assert torch.isfinite(g).all() and g.abs().sum() > 0
        torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-12)


def test_ma_gp_scaled_equals_unscaled() -> None:
    netD, netC = _tiny_nets()  # noqa: N806
    real, sent = _inputs()
    gp = ma_gp(netD, netC, real, sent)
    for scale in (65536.0, 64.0):
        torch.testing.assert_close(ma_gp(netD, netC, real, sent, scale=scale), gp, rtol=1e-9, atol=0)


def test_ma_gp_needs_grad_leaves() -> None:
    netD, netC = _tiny_nets()  # noqa: N806
    real, sent = _inputs()
    with pytest.raises(ValueError):
        ma_gp(netD, netC, real.detach(), sent)


def test_discriminator_loss_backward_reaches_d_and_c() -> None:
    netD, netC = _tiny_nets()  # noqa: N806
    real, sent = _inputs()
    fake = torch.randn_like(real).requires_grad_()
    loss = discriminator_loss(netD, netC, real, fake, sent)
    torch.testing.assert_close(loss.gp, ma_gp(netD, netC, real, sent))
    mis = torch.roll(sent, -1, 0)
    torch.testing.assert_close(loss.mis, F.relu(1 + netC(netD(real), mis)).mean())
    loss.total.backward()
    for p in list(netD.parameters()) + list(netC.parameters()):
        assert p.grad is not None and torch.isfinite(p.grad).all()
    assert fake.grad is None
