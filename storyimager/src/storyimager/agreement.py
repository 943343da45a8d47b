"""Agreement of a story's frames 2..K with its first frame: does continuation use the given frame?

Continuation sees the real frame 1; visualization does not (it sees the captions only), so the difference between
the two modes' agreement with the real frame 1 is what the given frame adds. On the synthetic stories every frame
of a story shares its cast and background (``common.synthetic.story``: a character is a sprite of a fixed colour
and shape; the background tint is per episode), so both are visible in pixels:

- character agreement: the character classifier's predicted set of each frame k >= 2 against the true set of
  frame 1, as the Jaccard index |P_k & T_1| / |P_k | T_1| (0 when both are empty), averaged over frames;
- colour agreement: histogram intersection sum_b min(h_k[b], h_1[b]) of the frames' normalised RGB histograms
  (4 bins per channel, 64 bins), averaged over frames; dominated by the background tint (sprites cover a few
  per cent of a frame).

The same numbers on the real frames 2..K give the reference the data itself reaches.
"""

from __future__ import annotations

import torch

BINS = 4


def character_agreement(pred: torch.Tensor, first: torch.Tensor) -> float:
    """Mean Jaccard index of predicted sets ``pred`` [N, K-1, C] with the first frames' true sets ``first`` [N, C]."""
    p, t = pred.bool(), first.bool()[:, None].expand_as(pred)
    return float(((p & t).sum(-1) / (p | t).sum(-1).clamp(min=1)).mean())


def colour_histograms(frames: torch.Tensor) -> torch.Tensor:
    """[..., 3, H, W] in [-1, 1] -> normalised RGB histograms [..., BINS**3]."""
    q = ((frames.clamp(-1, 1) + 1) / 2 * BINS).long().clamp(max=BINS - 1)
    index = (q[..., 0, :, :] * BINS + q[..., 1, :, :]) * BINS + q[..., 2, :, :]
    flat = index.flatten(-2)
    hist = torch.zeros(*flat.shape[:-1], BINS ** 3).scatter_add_(-1, flat, torch.ones_like(flat, dtype=torch.float))
    return hist / flat.shape[-1]


def colour_agreement(later: torch.Tensor, first: torch.Tensor) -> float:
    """Mean histogram intersection of the histograms of frames 2..K [N, K-1, B] with the first frames' [N, B]."""
    return float(torch.minimum(later, first[:, None]).sum(-1).mean())
