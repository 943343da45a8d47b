"""CLIP score as GALIP reports it (``tobran/GALIP:code/lib/modules.py:calculate_FID_CLIP_sim``).

CS = mean over generated images i of cos(E_img(x_i), E_txt(t_i)), the cosine between the CLIP
image embedding of a sample and the CLIP text embedding of its own caption. GALIP's number is this
raw mean: no x100 scaling and no clipping at 0 (its README's 0.3338; ``test.py`` prints it x100).
Mapping generated images to CLIP's input (resize, CLIP normalisation) belongs to the caller.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def clip_cosines(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
    """Per-pair cosine similarity [N] of matching rows of two [N, D] embedding matrices."""
    if image_embeddings.shape != text_embeddings.shape or image_embeddings.ndim != 2:
        raise ValueError(
            f"expected two [N, D] embeddings of equal shape, got {tuple(image_embeddings.shape)} "
            f"and {tuple(text_embeddings.shape)}"
        )
    return F.cosine_similarity(image_embeddings.float(), text_embeddings.float(), dim=1)


def clip_score(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> float:
    """GALIP's CLIP score: the plain mean cosine over all pairs (raw, not x100, not clipped)."""
    return float(clip_cosines(image_embeddings, text_embeddings).mean())
