"""Gaussian diffusion on interaction vectors (DiffRec, ``YiyanXu/DiffRec:DiffRec/models/gaussian_diffusion.py``).

Forward process q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I), t = 0..T-1 (0-based as DiffRec),
with DiffRec's "linear-var" schedule: 1 - abar_t = s * linspace(v_min, v_max, T)[t], betas from
consecutive abar (capped at 0.999) and beta_0 fixed to 1e-5. The network predicts x_0; the loss of
step t is weighted by SNR(t-1) - SNR(t) (1 at t = 0) and timesteps are importance-sampled with
p_t proportional to sqrt(E[L_t^2]) over each step's last 10 losses (0.1% uniform mixing), the loss
being divided by T p_t; sampling is uniform until every step has 10 losses.
"""

from __future__ import annotations

import torch


def linear_var_betas(steps: int, scale: float, noise_min: float, noise_max: float,
                     beta_fixed: bool = True, max_beta: float = 0.999) -> torch.Tensor:
    """float64 [T] betas of DiffRec's linear-variance schedule."""
    variance = scale * torch.linspace(noise_min, noise_max, steps, dtype=torch.float64)
    alpha_bar = 1.0 - variance
    betas = torch.empty(steps, dtype=torch.float64)
    betas[0] = 1.0 - alpha_bar[0]
    betas[1:] = torch.clamp(1.0 - alpha_bar[1:] / alpha_bar[:-1], max=max_beta)
    if beta_fixed:
        betas[0] = 1e-5
    return betas


class GaussianDiffusion:
    """Schedule tensors, q(x_t | x_0), the x_0-posterior and the timestep importance sampler."""

    def __init__(self, steps: int, noise_scale: float, noise_min: float, noise_max: float,
                 history: int = 10, uniform_prob: float = 0.001) -> None:
        if not (noise_scale > 0 and 0 < noise_min <= noise_max):
            raise ValueError("need noise_scale > 0 and 0 < noise_min <= noise_max")
        self.steps, self.history, self.uniform_prob = steps, history, uniform_prob
        self.betas = linear_var_betas(steps, noise_scale, noise_min, noise_max)
        if not ((self.betas > 0) & (self.betas <= 1)).all():
            raise ValueError("betas out of (0, 1]")
        alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(alphas, 0)
        prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        self.posterior_coef_x0 = self.betas * prev.sqrt() / (1.0 - self.alphas_cumprod)
        self.posterior_coef_xt = (1.0 - prev) * alphas.sqrt() / (1.0 - self.alphas_cumprod)
        self.loss_history = torch.zeros(steps, history, dtype=torch.float64)
        self.loss_count = torch.zeros(steps, dtype=torch.long)

    @staticmethod
    def _at(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.to(like.device)[t].to(like.dtype).unsqueeze(-1)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps."""
        noise = torch.randn_like(x0) if noise is None else noise
        signal = self._at(self.alphas_cumprod.sqrt(), t, x0)
        return signal * x0 + self._at((1 - self.alphas_cumprod).sqrt(), t, x0) * noise

    def posterior_mean(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Mean of q(x_{t-1} | x_t, x_0); at t = 0 it is x_0 itself."""
        return self._at(self.posterior_coef_x0, t, xt) * x0 + self._at(self.posterior_coef_xt, t, xt) * xt

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        a = self.alphas_cumprod[t]
        return a / (1.0 - a)

    def loss_weight(self, t: torch.Tensor) -> torch.Tensor:
        """DiffRec's x_0 reweighting SNR(t-1) - SNR(t), and 1 at t = 0 (float64 [B])."""
        t = t.cpu()
        ones = torch.ones_like(t, dtype=torch.float64)
        return torch.where(t == 0, ones, self.snr((t - 1).clamp(min=0)) - self.snr(t))

    def sample_timesteps(self, batch: int, generator: torch.Generator | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """(t [B], T * p_t [B]): importance sampling once every step has a full history, else uniform."""
        if not (self.loss_count == self.history).all():
            return torch.randint(0, self.steps, (batch,), generator=generator), torch.ones(batch, dtype=torch.float64)
        p = self.loss_history.pow(2).mean(-1).sqrt()
        p = p / p.sum() * (1 - self.uniform_prob) + self.uniform_prob / self.steps
        t = torch.multinomial(p, batch, replacement=True, generator=generator)
        return t, p[t] * self.steps

    def record_losses(self, t: torch.Tensor, losses: torch.Tensor) -> None:
        """Append each step's new losses (in batch order) to its ring of the last ``history`` losses."""
        t, losses = t.cpu(), losses.detach().double().cpu()
        for step in torch.unique(t).tolist():  # at most T distinct steps per batch
            new = losses[t == step]
            have = self.loss_history[step, : self.loss_count[step]]
            merged = torch.cat([have, new])[-self.history:]
            self.loss_history[step, : merged.numel()] = merged
            self.loss_count[step] = merged.numel()

    def state_dict(self) -> dict:
        return {"loss_history": self.loss_history.clone(), "loss_count": self.loss_count.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.loss_history.copy_(state["loss_history"])
        self.loss_count.copy_(state["loss_count"])
