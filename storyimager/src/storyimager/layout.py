"""Storyboard layout: the K frame latents of a story side by side as one latent canvas (spec A2).

A story's frame latents ``[B, K, C, h, w]`` become one canvas ``[B, C, h, K*w]`` (a 1 x K row), which the UNet
denoises in one pass, so its self-attention and convolutions see every frame (bidirectional storyboard
generation). The UNet flattens a level's feature map in raster order, so at a level whose map is
``[h/s, K*w/s]`` token ``(y, x)`` belongs to frame ``x // (w/s)``; ``to_frames`` / ``from_frames`` regroup the
tokens of a level per frame without copying more than one permute. ``StoryLayout`` carries the facts every
Frame-Story Cross Attention layer needs (K, the frame latent size, the caption length) plus the per-call
context prior; the model sets it before each UNet call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def to_canvas(frames: torch.Tensor) -> torch.Tensor:
    """[B, K, C, h, w] -> [B, C, h, K*w] (frames left to right)."""
    b, k, c, h, w = frames.shape
    return frames.permute(0, 2, 3, 1, 4).reshape(b, c, h, k * w)


def from_canvas(canvas: torch.Tensor, frames: int) -> torch.Tensor:
    """[B, C, h, K*w] -> [B, K, C, h, w]."""
    b, c, h, kw = canvas.shape
    if kw % frames:
        raise ValueError(f"canvas width {kw} is not a multiple of {frames} frames")
    return canvas.reshape(b, c, h, frames, kw // frames).permute(0, 3, 1, 2, 4)


def frame_map(values: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Per-frame vectors [B, K, C] spread over each frame's cells: a canvas map [B, C, height, K*width]."""
    b, k, c = values.shape
    return values.permute(0, 2, 1)[:, :, None, :, None].expand(b, c, height, k, width).reshape(b, c, height, k * width)


@dataclass
class StoryLayout:
    """What the attention processors need to find the frames in a token sequence.

    ``frames`` = K, ``height``/``width`` = one frame's latent size at the UNet input, ``text_len`` = tokens
    per caption (the encoder states hold K*text_len caption tokens followed by the story tokens), ``prior``
    = the Contextual Feature Extractor's per-frame prior for the current call ([B, K, C0] or None).
    """

    frames: int
    height: int
    width: int
    text_len: int
    prior: torch.Tensor | None = None

    def level(self, n_tokens: int) -> tuple[int, int]:
        """(rows, columns per frame) of a UNet level with ``n_tokens`` tokens on the canvas."""
        scale2 = self.height * self.width * self.frames / n_tokens
        s = round(math.sqrt(scale2))
        if s < 1 or s * s != scale2 or self.height % s or self.width % s:
            raise ValueError(f"{n_tokens} tokens do not tile {self.frames} frames of {self.height}x{self.width} "
                             "latents; frame sizes must be divisible by 2^(UNet levels - 1)")
        return self.height // s, self.width // s

    def to_frames(self, tokens: torch.Tensor) -> torch.Tensor:
        """Canvas tokens [B, H*K*w, C] -> per-frame tokens [B*K, H*w, C]."""
        b, n, c = tokens.shape
        rows, cols = self.level(n)
        x = tokens.reshape(b, rows, self.frames, cols, c).permute(0, 2, 1, 3, 4)
        return x.reshape(b * self.frames, rows * cols, c)

    def from_frames(self, tokens: torch.Tensor) -> torch.Tensor:
        """Per-frame tokens [B*K, H*w, C] -> canvas tokens [B, H*K*w, C]."""
        bk, n, c = tokens.shape
        b = bk // self.frames
        rows, cols = self.level(n * self.frames)
        x = tokens.reshape(b, self.frames, rows, cols, c).permute(0, 2, 1, 3, 4)
        return x.reshape(b, rows * self.frames * cols, c)
