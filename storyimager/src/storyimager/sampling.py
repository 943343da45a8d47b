"""Storyboard sampling: DDIM over the whole canvas with classifier-free guidance and the given frames kept.

The DDIM scheduler is AR-LDM's (``clip_sample=False``, as in SD 1.5's own scheduler config): clipping the
predicted latent to [-1, 1] would pull every sample towards the mean latent. Each step runs the UNet once on a
doubled batch [unconditional; conditional] (captions "" vs the story's captions; the given frames and the mask
are the same in both halves) and combines
eps = eps_u + g (eps_c - eps_u). Given frames: with ``masked_noise`` input the given cells of the canvas are
reset to their clean latents after every step (they are clean in the model's input anyway); with
``inpainting`` input they are reset to the clean latents re-noised to the next timestep, and to the clean
latents after the last step. ``denoise_canvas`` returns that final latent canvas; ``sample_story`` decodes it
and returns the caller's images at the given positions, so they come back bit-exact.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from storyimager.masking import canvas_mask, unet_input


@torch.inference_mode()
def denoise_canvas(model, captions: list[list[str]], masks: torch.Tensor, z0: torch.Tensor, *, steps: int = 50,
                   guidance: float = 6.0, eta: float = 0.0, generator: torch.Generator | None = None,
                   progress: bool = False) -> torch.Tensor:
    """The DDIM loop: the final latent canvas [B, 4, h, K*w] for clean latents ``z0`` (only the given cells are
    read) and frame masks [B, K] (1 = generate)."""
    from diffusers import DDIMScheduler

    lay = model.layout
    b, k = masks.shape
    masks = masks.float().to(model.device)
    mask = canvas_mask(masks, lay.height, lay.width)
    sched = DDIMScheduler.from_config(model.scheduler_config, clip_sample=False)  # AR-LDM's DDIM; SD 1.5's config
    sched.set_timesteps(steps)
    cond, prior = model.condition(captions, masks)
    if guidance != 1.0:
        uncond, prior_u = model.condition([[""] * k] * b, masks)
        cond = torch.cat([uncond, cond])
        prior = None if prior is None else torch.cat([prior_u, prior])
    z = torch.randn(z0.shape, generator=generator).to(model.device) * sched.init_noise_sigma
    timesteps = sched.timesteps
    for i, t in enumerate(tqdm(timesteps, desc="DDIM", unit="step", disable=not progress)):
        z_in = unet_input(z, z0, mask, model.config.mask_input)
        if guidance != 1.0:
            eps_u, eps_c = model.predict(torch.cat([z_in, z_in]), t.expand(2 * b).to(model.device), cond,
                                         prior).chunk(2)
            eps = eps_u + guidance * (eps_c - eps_u)
        else:
            eps = model.predict(z_in, t.expand(b).to(model.device), cond, prior)
        z = sched.step(eps, t, z, eta=eta, generator=generator).prev_sample
        known = z0
        if model.config.mask_input == "inpainting" and i + 1 < len(timesteps):
            noise = torch.randn(z0.shape, generator=generator).to(model.device)
            known = sched.add_noise(z0, noise, timesteps[i + 1:i + 2])
        z = mask * z + (1 - mask) * known
    return z


@torch.inference_mode()
def sample_story(model, captions: list[list[str]], masks: torch.Tensor, given: torch.Tensor | None = None, *,
                 steps: int = 50, guidance: float = 6.0, eta: float = 0.0, generator: torch.Generator | None = None,
                 progress: bool = False) -> torch.Tensor:
    """Frames [B, K, 3, R, R] in [-1, 1] for B stories; ``masks`` [B, K] (1 = generate); ``given`` [B, K, 3, R, R]
    in [-1, 1] holds the given frames (targets' entries are ignored; may be None when every frame is a target)."""
    lay = model.layout
    b, k = masks.shape
    if given is None:
        if (masks == 0).any():
            raise ValueError("given frames are required when the mask has given (0) entries")
        z0 = torch.zeros(b, 4, lay.height, k * lay.width, device=model.device)
    else:
        z0 = model.encode_frames(given, generator)
    z = denoise_canvas(model, captions, masks, z0, steps=steps, guidance=guidance, eta=eta, generator=generator,
                       progress=progress)
    frames = model.decode_frames(z)
    if given is not None:
        keep = masks.to(frames.device)[:, :, None, None, None] == 0
        frames = torch.where(keep, given.to(frames.device, frames.dtype), frames)
    return frames
