"""LD4MRec: the diffusion training objective with soft targets, and forward-free one-step inference."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn

from ld4mrec.cnet import CNet, Conditions
from ld4mrec.config import LD4MRecConfig
from ld4mrec.diffusion import GaussianDiffusion


def soft_target(x0: torch.Tensor, mode: str, p: float, gamma: float, prediction: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Soft behavioural reconstruction target x~_0 (our reading; the paper's equation was not available).

    Each user row is softened with probability p:
    - ``label_smoothing``: x~_0 = (1 - gamma) x_0 + gamma (1 - x_0);
    - ``self``: x~_0 = (1 - gamma) x_0 + gamma * stopgrad(x^_0), the model's own reconstruction
      (semi-supervised: unobserved items the model already scores high are not pushed to 0);
    - ``none``: the hard target x_0.
    """
    if mode == "none" or p == 0 or gamma == 0:
        return x0
    rows = torch.rand(x0.shape[0], 1, generator=generator).to(x0.device) < p
    other = 1.0 - x0 if mode == "label_smoothing" else prediction.detach()
    return torch.where(rows, (1.0 - gamma) * x0 + gamma * other, x0)


class LD4MRec(nn.Module):
    def __init__(self, config: LD4MRecConfig, train: sp.csr_matrix, features: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.config = config
        self.train_matrix = train
        self.conditions = Conditions(train, features, config.cond_dim, config.svd_rank, config.seed,
                                     config.use_collaborative, config.use_modality)
        self.cnet = CNet(train.shape[1], config.hidden, config.time_emb, max(self.conditions.dim, 1), config.dropout)
        self.diffusion = GaussianDiffusion(config.steps, config.noise_scale, config.noise_min, config.noise_max)

    def behaviour(self, users: torch.Tensor) -> torch.Tensor:
        """Dense observed (training) interaction vectors x_u [B, n_items]."""
        rows = self.train_matrix[users.cpu().numpy().copy()]
        return torch.from_numpy(rows.toarray()).to(users.device)

    def loss(self, users: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """DiffRec's objective: E_t [w_t ||f(x_t, t, c_u) - x~_0||^2 / (T p_t)], t importance-sampled.

        ``objective: one_step`` (ablation, ours) trains only what one-step inference runs: ||f(x_u, t_in, c_u) -
        x~_0||^2 with no timestep sampling, no noise and no weighting (the input dropout is the only corruption).
        """
        x0 = self.behaviour(users)
        one_step = self.config.objective == "one_step"
        if one_step:
            t, xt = torch.full((x0.shape[0],), self.config.t_in, device=x0.device), x0
        else:
            t, pt = self.diffusion.sample_timesteps(x0.shape[0], generator)
            t = t.to(x0.device)
            xt = self.diffusion.q_sample(x0, t, torch.randn(x0.shape, generator=generator).to(x0.device))
        pred = self.cnet(xt, t, self.conditions(users))
        target = soft_target(x0, self.config.soft_target, self.config.soft_prob, self.config.soft_gamma, pred,
                             generator)
        if one_step:
            return (pred - target).pow(2).mean()
        weighted = self.diffusion.loss_weight(t).to(x0.device) * (pred - target).pow(2).mean(1)
        self.diffusion.record_losses(t, weighted)
        return (weighted / pt.to(x0.device)).float().mean()

    @torch.inference_mode()
    def predict(self, users: torch.Tensor, reverse_steps: int | None = None) -> torch.Tensor:
        """Scores [B, n_items]. One step (default): f(x_u, t_in, c_u), no noising and no iteration.

        ``reverse_steps`` = k > 0 runs the classical reverse process with the same network: start from
        x_u (no forward noising, as DiffRec's ``sampling_steps=0``) at step k-1 and take k posterior-mean
        steps down to t = 0.
        """
        k = self.config.reverse_steps if reverse_steps is None else reverse_steps
        x = self.behaviour(users)
        cond = self.conditions(users)
        if k == 0:
            t = torch.full((x.shape[0],), self.config.t_in, device=x.device)
            return self.cnet(x, t, cond)
        for step in range(k - 1, -1, -1):
            t = torch.full((x.shape[0],), step, device=x.device)
            x = self.diffusion.posterior_mean(self.cnet(x, t, cond), x, t)
        return x
