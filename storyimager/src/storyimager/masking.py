"""Target Frame Masking (spec A2): one model for visualization, continuation and completion.

A frame mask m in {0, 1}^K marks the targets (1 = generate, 0 = given). Visualization: all ones;
continuation: the first frame given; completion (infill, backtrack): any non-empty proper subset of targets.
The UNet input is built by ``unet_input``:

- ``masked_noise`` (default; the paper's Fig. 2 as reposted: only target cells are noised):
  [M * Z_t + (1 - M) * Z_0 ; M] -> 4 + 1 channels.
- ``inpainting`` (the SD-inpainting layout, an alternative): [Z_t ; (1 - M) * Z_0 ; M] -> 4 + 4 + 1 channels.

The loss is taken on target cells only (``loss_region: target``), so given frames carry zero weight.
"""

from __future__ import annotations

import torch

from storyimager.layout import frame_map

MODES = ("visualize", "continue", "complete")
INPUTS = {"masked_noise": 1, "inpainting": 2}  # latent copies in the UNet input (+ 1 mask channel)


def frame_mask(mode: str, frames: int, given: list[int] | None = None) -> torch.Tensor:
    """The [K] float mask of a mode; ``given`` = 0-based indices of the given frames for ``complete``."""
    if mode == "visualize":
        if given:
            raise ValueError("visualize generates every frame; given frames need --mode continue or complete")
        return torch.ones(frames)
    if mode == "continue":
        m = torch.ones(frames)
        m[0] = 0
        return m
    if mode == "complete":
        if not given:
            raise ValueError("complete needs the indices of the given frames")
        bad = [g for g in given if not 0 <= g < frames]
        if bad:
            raise ValueError(f"given frame indices {bad} are outside 0..{frames - 1}")
        m = torch.ones(frames)
        m[list(given)] = 0
        if m.sum() == 0:
            raise ValueError("complete needs at least one target frame (all frames are given)")
        return m
    raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")


def sample_masks(batch: int, frames: int, probs: tuple[float, float, float], generator: torch.Generator
                 ) -> torch.Tensor:
    """Training masks [B, K]: visualize / continue / complete with ``probs``; a completion mask masks each frame
    with p = 0.5, redrawn (per story, vectorised) until it is neither empty nor full."""
    modes = torch.multinomial(torch.tensor(probs, dtype=torch.float), batch, replacement=True, generator=generator)
    masks = torch.ones(batch, frames)
    masks[modes == 1, 0] = 0
    todo = modes == 2
    while todo.any():
        draw = (torch.rand(int(todo.sum()), frames, generator=generator) < 0.5).float()
        masks[todo] = draw
        s = masks.sum(1)
        todo = todo & ((s == 0) | (s == frames))
    return masks


def canvas_mask(masks: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[B, K] frame masks -> [B, 1, h, K*w] latent mask M."""
    return frame_map(masks[..., None], height, width)


def unet_input(z_t: torch.Tensor, z0: torch.Tensor, mask: torch.Tensor, kind: str = "masked_noise") -> torch.Tensor:
    """The UNet's input canvas from the noised canvas ``z_t``, the clean canvas ``z0`` and M [B, 1, h, K*w]."""
    if kind == "masked_noise":
        return torch.cat([mask * z_t + (1 - mask) * z0, mask], dim=1)
    if kind == "inpainting":
        return torch.cat([z_t, (1 - mask) * z0, mask], dim=1)
    raise ValueError(f"unknown mask input {kind!r}; expected one of {', '.join(INPUTS)}")


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sum(M * (target - pred)^2) / (C * sum(M)): the mean squared error over target cells only."""
    weight = mask.expand_as(pred)
    return (weight * (target - pred) ** 2).sum() / weight.sum().clamp(min=1)

