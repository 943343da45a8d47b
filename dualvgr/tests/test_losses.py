"""Consistency and HSIC terms on hand-checked cases and against the official formulas (spec B4)."""

import pytest
import torch

from dualvgr.losses import consistency_loss, dualvgr_loss, hsic
from dualvgr.model import UnitTrace


def test_consistency_is_zero_for_identical_inputs_and_matches_a_hand_computed_case():
    x = torch.randn(3, 5, 4)
    assert consistency_loss(x, x) == 0
    a = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]])  # centred already; rows normalised by hand
    b = torch.tensor([[[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]]])  # a zero row stays zero after normalising
    # S_a = [[1,0,-r],[0,1,-r],[-r,-r,1]], S_b = [[1,-1,0],[-1,1,0],[0,0,0]], r = 1/sqrt(2): squares sum to 5
    assert consistency_loss(a, b).item() == pytest.approx(5 / 9, rel=1e-6)


def test_hsic_equals_the_official_trace_form_and_a_closed_form():
    torch.manual_seed(0)
    x, y = torch.randn(3, 6, 4), torch.randn(3, 6, 5)
    n = 6
    r = torch.eye(n) - torch.ones(n, n) / n
    literal = sum(torch.trace(r @ xi @ xi.T @ r @ yi @ yi.T) for xi, yi in zip(x, y))
    assert hsic(x, y).item() == pytest.approx(literal.item(), rel=1e-4)
    assert hsic(x, y) >= 0
    toy = torch.tensor([[[1.0], [3.0]]]).repeat(2, 1, 1)  # centred (-1, 1): K~ = [[1,-1],[-1,1]], <K~,K~> = 4
    assert hsic(toy, toy).item() == pytest.approx(8.0)
    assert hsic(toy, toy + 5.0).item() == pytest.approx(8.0)  # shift-invariant


def test_total_loss_weights_and_unit_mean():
    torch.manual_seed(0)
    trace = UnitTrace()
    for _ in range(2):
        for name in ("specific_app", "common_app", "specific_mot", "common_mot"):
            getattr(trace, name).append(torch.randn(2, 4, 3))
    logits, answers = torch.randn(2, 5), torch.tensor([1, 4])
    ce = torch.nn.functional.cross_entropy(logits, answers)
    com = sum(consistency_loss(a, m) for a, m in zip(trace.common_app, trace.common_mot)) / 2
    dep = sum(hsic(trace.specific_app[t], trace.common_app[t]) + hsic(trace.specific_mot[t], trace.common_mot[t])
              for t in range(2)) / 2
    total, parts = dualvgr_loss(logits, answers, trace, alpha=0.5, beta=0.1)
    assert total.item() == pytest.approx((ce + 0.5 * com + 0.1 * dep).item(), rel=1e-6)
    assert parts["consistency"] == pytest.approx(com.item()) and parts["hsic"] == pytest.approx(dep.item())
    assert dualvgr_loss(logits, answers, trace, alpha=0, beta=0)[0].item() == pytest.approx(ce.item())
