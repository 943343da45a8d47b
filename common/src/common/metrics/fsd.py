"""Fréchet Story Distance (FSD; CP-CSV, Song et al. ECCV 2020), as ``adymaharana/StoryViz:vfid/vfid_score.py``.

A story of T frames is one clip [3, T, H, W]; torchvision's ``r2plus1d_18`` (Kinetics-400 weights, read from a
local file) up to its global average pool gives a 512-d feature per story, and FSD is the Fréchet distance
(``common.metrics.fid.frechet_distance``) between the real and the generated feature sets. As in StoryViz, the
frames enter at the evaluation size (imsize 64) as they are: its wrapper's 112-px resize and [-1, 1] rescale are
never applied in its forward pass. Our input range is [0, 1] (the StoryViz loaders' range could not be checked).
Note StoryViz's ``drop_last=True`` loader, which skips the stories past the last full batch; we use every story.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common.errors import DataFormatError, WeightsNotFoundError
from common.io import atomic_save, read_state_dict

R2PLUS1D_FILE = "r2plus1d_18-91a641e6.pth"
R2PLUS1D_SOURCE = "torchvision's R2Plus1D_18_Weights.KINETICS400_V1 (https://download.pytorch.org/models/" \
                  + R2PLUS1D_FILE + ")"
FSD_SIZE = 64


def _r2plus1d() -> torch.nn.Module:
    from torchvision.models.video import r2plus1d_18

    return r2plus1d_18(weights=None)


def load_r2plus1d(weights: str | Path | None, key: str = "fsd_weights") -> torch.nn.Module:
    """The FSD network: ``r2plus1d_18`` with the Kinetics weights of ``weights`` (None: untrained, for tests),
    its classifier replaced by the identity, in eval mode."""
    net = _r2plus1d()
    if weights is not None:
        weights = Path(weights)
        if not weights.is_file():
            raise WeightsNotFoundError(key, weights, R2PLUS1D_SOURCE)
        try:
            net.load_state_dict(read_state_dict(weights))
        except RuntimeError as err:
            raise DataFormatError(weights, f"not torchvision's r2plus1d_18 ({str(err).splitlines()[0]})") from None
    net.fc = torch.nn.Identity()
    return net.eval()


def story_clips(stories: torch.Tensor, size: int = FSD_SIZE) -> torch.Tensor:
    """uint8 stories [N, T, 3, H, W] -> float clips [N, 3, T, size, size] in [0, 1] (PIL bilinear resize)."""
    if stories.dtype != torch.uint8 or stories.ndim != 5 or stories.shape[2] != 3:
        raise ValueError(f"expected uint8 stories [N, T, 3, H, W], got {stories.dtype} {tuple(stories.shape)}")
    n, t = stories.shape[:2]
    frames = stories.flatten(0, 1).permute(0, 2, 3, 1).numpy()
    small = np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.BILINEAR)) for f in frames])
    clips = torch.from_numpy(small).float().div(255).view(n, t, size, size, 3)
    return clips.permute(0, 4, 1, 2, 3).contiguous()


@torch.inference_mode()
def story_features(net: torch.nn.Module, stories: torch.Tensor, batch: int = 16) -> np.ndarray:
    """512-d features [N, 512] of uint8 stories [N, T, 3, H, W]."""
    device = next(net.parameters()).device
    out = [net(story_clips(stories[i:i + batch]).to(device)).cpu().numpy() for i in range(0, len(stories), batch)]
    return np.concatenate(out) if out else np.zeros((0, 512), dtype=np.float32)


def write_random_r2plus1d_weights(path: str | Path, seed: int = 0) -> Path:
    """Save RANDOM ``r2plus1d_18`` weights in the Kinetics file's key layout (tests and embedded defaults only)."""
    torch.manual_seed(seed)
    atomic_save(_r2plus1d().state_dict(), path)
    return Path(path)
