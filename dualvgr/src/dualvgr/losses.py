"""DualVGR's objective (official ``train.py`` loss loop and ``utils.py``):

L = CE + alpha * (1/T) sum_t L_com(Z_CA^t, Z_CM^t) + beta * (1/T) sum_t [HSIC(Z_A^t, Z_CA^t) + HSIC(Z_M^t, Z_CM^t)]

with the official alpha = 1, beta = 1e-8 and T = the number of units. Both auxiliary terms keep the official
scale: the consistency term is a plain mean over B*N*N entries and HSIC is summed over the batch with no
(N-1)^-2 factor (hence the tiny beta).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dualvgr.model import UnitTrace


def consistency_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L_com (``common_loss``): centre over nodes, l2-normalise rows, S = X X^T per sample, mean (S_x - S_y)^2."""
    def similarity(z: torch.Tensor) -> torch.Tensor:
        z = F.normalize(z - z.mean(dim=1, keepdim=True), dim=2)
        return z @ z.transpose(1, 2)

    return (similarity(x) - similarity(y)).pow(2).mean()


def hsic(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """HSIC disparity (``loss_dependence``): sum_b tr(R K_x R K_y) with K = X X^T and R = I - 11^T / N.

    Computed as sum_b <R K_x R, R K_y R>_F = sum_b <X~ X~^T, Y~ Y~^T>_F with X~ = R X (R is symmetric and
    idempotent), which is the same number without the [B, N, N] products of R."""
    xc, yc = x - x.mean(dim=1, keepdim=True), y - y.mean(dim=1, keepdim=True)
    return ((xc @ xc.transpose(1, 2)) * (yc @ yc.transpose(1, 2))).sum()


def dualvgr_loss(logits: torch.Tensor, answers: torch.Tensor, trace: UnitTrace, alpha: float = 1.0,
                 beta: float = 1e-8) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its parts (``ce``, ``consistency``, ``hsic``: the unweighted unit means) as floats."""
    ce = F.cross_entropy(logits, answers)
    units = len(trace.common_app)
    com = sum(consistency_loss(a, m) for a, m in zip(trace.common_app, trace.common_mot)) / units
    dep = sum(hsic(sa, ca) + hsic(sm, cm) for sa, ca, sm, cm in
              zip(trace.specific_app, trace.common_app, trace.specific_mot, trace.common_mot)) / units
    total = ce + alpha * com + beta * dep
    return total, {"ce": float(ce.detach()), "consistency": float(com.detach()), "hsic": float(dep.detach())}
