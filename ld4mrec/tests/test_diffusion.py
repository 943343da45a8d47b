"""DiffRec's schedule, forward process, reweighting and importance sampler."""

import math

import pytest
import torch

from ld4mrec.diffusion import GaussianDiffusion, linear_var_betas


def test_linear_var_schedule_values():
    betas = linear_var_betas(4, scale=0.1, noise_min=1e-3, noise_max=1e-2)
    var = [0.1 * (1e-3 + k * (1e-2 - 1e-3) / 3) for k in range(4)]  # 1 - abar_t before the beta_0 fix
    assert betas[0].item() == 1e-5  # beta_0 fixed
    for t in range(1, 4):
        assert betas[t].item() == pytest.approx(1 - (1 - var[t]) / (1 - var[t - 1]), rel=1e-12)
    d = GaussianDiffusion(4, 0.1, 1e-3, 1e-2)
    want = torch.cumprod(1 - betas, 0)
    assert torch.allclose(d.alphas_cumprod, want)
    unfixed = linear_var_betas(4, 0.1, 1e-3, 1e-2, beta_fixed=False)
    assert torch.allclose(1 - torch.cumprod(1 - unfixed, 0), torch.tensor(var, dtype=torch.float64))


def test_q_sample_statistics():
    d = GaussianDiffusion(10, 0.5, 0.01, 0.5)
    x0 = torch.tensor([[1.0, 0.0, 1.0]]).expand(40_000, 3)
    t = torch.full((40_000,), 7)
    xt = d.q_sample(x0, t, noise=torch.randn(40_000, 3, generator=torch.Generator().manual_seed(0)))
    a = d.alphas_cumprod[7].item()
    assert xt.mean(0).tolist() == pytest.approx([math.sqrt(a), 0.0, math.sqrt(a)], abs=0.01)
    assert xt.var(0).tolist() == pytest.approx([1 - a] * 3, rel=0.03)


def test_posterior_mean_at_step_zero_is_the_prediction():
    d = GaussianDiffusion(5, 1e-4, 5e-4, 5e-3)
    x0, xt = torch.rand(3, 6), torch.rand(3, 6)
    assert torch.allclose(d.posterior_mean(x0, xt, torch.zeros(3, dtype=torch.long)), x0)


def test_loss_weight_is_snr_difference_and_one_at_zero():
    d = GaussianDiffusion(5, 0.1, 1e-3, 1e-2)
    snr = d.alphas_cumprod / (1 - d.alphas_cumprod)
    w = d.loss_weight(torch.tensor([0, 3]))
    assert w[0].item() == 1.0 and w[1].item() == pytest.approx((snr[2] - snr[3]).item())


def reference_record(history, count, t, losses, size=10):
    """DiffRec's per-sample loop: shift left when full, else write at the count."""
    for step, loss in zip(t.tolist(), losses.tolist()):
        if count[step] == size:
            history[step, :-1] = history[step, 1:].clone()
            history[step, -1] = loss
        else:
            history[step, count[step]] = loss
            count[step] += 1


def test_importance_sampler_history_matches_diffrec_and_switches_from_uniform():
    d = GaussianDiffusion(4, 0.1, 1e-3, 1e-2)
    ref_h, ref_c = torch.zeros(4, 10, dtype=torch.float64), torch.zeros(4, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    _, pt = d.sample_timesteps(8, g)
    assert (pt == 1).all()  # uniform until every step holds 10 losses
    for _ in range(12):
        t = torch.randint(0, 4, (9,), generator=g)
        losses = torch.rand(9, generator=g, dtype=torch.float64)
        d.record_losses(t, losses)
        reference_record(ref_h, ref_c, t, losses)
    assert torch.equal(d.loss_history, ref_h) and torch.equal(d.loss_count, ref_c)
    assert (d.loss_count == 10).all()
    d.loss_history[:] = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64).unsqueeze(1)
    t, pt = d.sample_timesteps(200_000, g)
    p = torch.tensor([1.0, 2.0, 3.0, 4.0]) / 10 * 0.999 + 0.001 / 4
    freq = torch.bincount(t, minlength=4) / 200_000
    assert torch.allclose(freq, p.float(), atol=0.005)
    assert torch.allclose(pt, (p[t] * 4).double())
