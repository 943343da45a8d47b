"""The training objective and the editing metrics on hand-checked cases."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from denet.losses import discriminator_loss, generator_loss, ma_gp, roll
from denet.metrics import manipulative_precision, pixel_differences, text_image_similarity


def test_mp_formula_on_a_hand_checked_case():
    source = torch.full((2, 3, 4, 4), -1.0)  # black in [0, 1] units
    edited = source.clone()
    edited[0] = 1.0  # image 0 entirely white: diff 1
    edited[1, :, :2] = 0.0  # image 1: half the rows mid-gray: |0.5 - 0| on half the pixels -> diff 0.25
    diff, mse = pixel_differences(source, edited)
    assert diff.tolist() == pytest.approx([1.0, 0.25])
    assert mse.tolist() == pytest.approx([1.0, 0.125])
    sim = text_image_similarity(torch.tensor([[1.0, 0.0], [3.0, 4.0]]), torch.tensor([[2.0, 0.0], [4.0, 3.0]]))
    assert sim.tolist() == pytest.approx([1.0, 24 / 25])
    assert manipulative_precision(diff, sim).tolist() == pytest.approx([0.0, 0.75 * 24 / 25])


def test_roll_pairs_row_i_with_row_i_plus_one():
    assert roll(torch.arange(4)).tolist() == [1, 2, 3, 0]


class _Linear(nn.Module):
    """D(x) = x (identity features); C(f, s) = <w, f> + <v, s>: the MA-GP gradient is (w, v) for every sample."""

    def __init__(self, w: torch.Tensor, v: torch.Tensor):
        super().__init__()
        self.w, self.v = nn.Parameter(w), nn.Parameter(v)

    def forward(self, f: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return (f.flatten(1) * self.w).sum(1, keepdim=True) + (s * self.v).sum(1, keepdim=True)


def test_ma_gp_is_k_times_the_p_th_power_of_the_joint_gradient_norm():
    c = _Linear(torch.tensor([3.0, 0.0]), torch.tensor([0.0, 4.0]))
    x, s = torch.randn(5, 2, requires_grad=True), torch.randn(5, 2, requires_grad=True)
    out = c(x, s)
    assert ma_gp(x, s, out, k=2.0, p=6.0).item() == pytest.approx(2.0 * 5.0**6)
    # under AMP the scaled output's gradient is divided by the scale again
    assert ma_gp(x, s, c(x, s), k=2.0, p=6.0, scale=1024.0).item() == pytest.approx(2.0 * 5.0**6)


def test_discriminator_loss_is_real_plus_half_fake_and_mismatch_plus_gp():
    c = _Linear(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0]))
    images = torch.tensor([[0.5, 0.0], [-3.0, 0.0]])  # logits 0.5 and -3 whatever the text
    edited = torch.tensor([[2.0, 0.0], [-0.25, 0.0]])
    sent = torch.zeros(2, 2)
    d = discriminator_loss(nn.Identity(), c, images, sent, edited, sent, k=2.0, p=6.0)
    real = (0.5 + 4.0) / 2  # relu(1 - 0.5), relu(1 + 3)
    mis = (0.0 + 1.5) / 2  # rolled features: logits -3, 0.5 -> relu(1 - 3), relu(1 + 0.5)
    fake = (3.0 + 0.75) / 2
    gp = 2.0 * 1.0  # |grad| = 1 per sample
    assert (d.real.item(), d.mis.item(), d.fake.item(), d.gp.item()) == pytest.approx((real, mis, fake, gp))
    assert d.total.item() == pytest.approx(real + (fake + mis) / 2 + gp)


def test_generator_loss_terms_and_zero_weights():
    c = _Linear(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0]))
    edited = torch.tensor([[2.0, 0.0], [-0.5, 0.0]])
    source = torch.tensor([[1.0, 0.0], [-0.5, 1.0]])
    sent = torch.zeros(2, 2)
    g = generator_loss(nn.Identity(), c, None, edited, source, None, sent, None, None, damsm_w=0.0, l1_w=3.0)
    assert g.adv.item() == pytest.approx(-(2.0 - 0.5) / 2)
    assert g.l1.item() == pytest.approx((1.0 + 0.0 + 0.0 + 1.0) / 4)
    assert g.damsm.item() == 0.0  # skipped: no image encoder was even needed
    assert g.total.item() == pytest.approx(g.adv.item() + 3.0 * 0.5)
    assert g.rec.item() == 0.0


def test_reconstruction_term_compares_the_own_caption_edit_with_the_source():
    c = _Linear(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0]))
    edited = torch.tensor([[2.0, 0.0], [-0.5, 0.0]])
    source = torch.tensor([[1.0, 0.0], [-0.5, 1.0]])
    recon = torch.tensor([[1.0, 0.5], [0.5, 1.0]])
    sent = torch.zeros(2, 2)
    g = generator_loss(nn.Identity(), c, None, edited, source, None, sent, None, None, damsm_w=0.0, l1_w=0.0,
                       recon=recon, rec_w=4.0)
    assert g.rec.item() == pytest.approx((0.0 + 0.5 + 1.0 + 0.0) / 4)
    assert g.l1.item() == 0.0
    assert g.total.item() == pytest.approx(-(2.0 - 0.5) / 2 + 4.0 * 0.375)
    with pytest.raises(ValueError, match="recon"):
        generator_loss(nn.Identity(), c, None, edited, source, None, sent, None, None, 0.0, 0.0, rec_w=1.0)
