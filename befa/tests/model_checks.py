"""Helpers shared by the base models' formula tests: a BPR batch, a fixed parameter pattern, parameter views."""

from __future__ import annotations

import numpy as np
import torch


def batch(data, n=32, seed=0):
    """n random training rows (user, positive) with a uniform random negative each."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(data.train_users.size, n, replace=False)
    return (torch.from_numpy(data.train_users[rows]), torch.from_numpy(data.train_items[rows]),
            torch.from_numpy(rng.integers(0, data.n_items, n)))


def fill_known(model):
    """Every parameter := 0.1 sin(0.37 j + offset), a fixed, non-degenerate pattern."""
    with torch.no_grad():
        for offset, p in enumerate(model.parameters()):
            p.copy_(0.1 * torch.sin(0.37 * torch.arange(p.numel(), dtype=torch.float64) + offset).view_as(p))


def numpy_params(model):
    return {k: v.detach().double().numpy() for k, v in model.named_parameters()}


def n_parameters(model):
    return sum(p.numel() for p in model.parameters())


def base_state(model):
    """The state dict without the adapters: what the base model and base + BeFA must share."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith("adapters.")}
