"""A tiny CLIP for the embedded default: the ViT-B/32 architecture at narrow widths (``VIT_B32_TINY``), trained on
the SYNTHETIC shapes captions with CLIP's contrastive loss (Radford et al., 2021, Fig. 3: symmetric cross-entropy
over cosine logits with a learned temperature), then saved as a plain state dict that ``clip.load`` reads.

GALIP's premise is a *pretrained* CLIP (frozen image and text towers whose features already align captions with
images); a random CLIP gives NetC almost nothing to judge and G nothing to follow. No real CLIP can be downloaded
here, so the embedded default makes its own from the synthetic data. Images enter with CLIP's own preprocessing
(bicubic resize to 224, CLIP mean/std); GALIP then feeds it through its official input mapping, as it does with
the real CLIP. Numbers from a run with it are SYNTHETIC, never comparable to the paper.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from common.data.clip_weights import VIT_B32_TINY, import_clip
from common.data.text_image import ClipTokenizer, TextImageDataset, read_captions

from .models.clip_encoders import CLIP_MEAN, CLIP_STD

log = logging.getLogger(__name__)


def clip_preprocess(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> CLIP's input: [0, 1], bicubic resize to 224, CLIP mean/std."""
    x = F.interpolate((images + 1) / 2, size=(224, 224), mode="bicubic", align_corners=False)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def contrastive_loss(model, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric InfoNCE over a batch of matching (image, caption) pairs."""
    img = F.normalize(model.encode_image(clip_preprocess(images)), dim=-1)
    txt = F.normalize(model.encode_text(tokens.long()), dim=-1)
    logits = model.logit_scale.exp().clamp(max=100) * img @ txt.t()
    target = torch.arange(images.size(0))
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


def train_tiny_clip(data: str | Path, out: str | Path, steps: int = 150, batch_size: int = 32, lr: float = 5e-4,
                    image_size: int = 64, seed: int = 0) -> Path:
    """Train ``VIT_B32_TINY`` on the train split of a shapes dataset (CUB layout; CUB-cropped, centre-cropped
    images and all their captions, held in memory) and save its state dict."""
    clip = import_clip()
    data_set = TextImageDataset(data, "train", "birds", image_size, augment=False)
    tokenizer = ClipTokenizer()
    images = torch.stack([data_set[i]["image"] for i in range(len(data_set))])  # held in memory: fast steps
    captions = [read_captions(Path(data) / "text" / f"{key}.txt") for key in data_set.keys]
    per_image = min(len(c) for c in captions)
    tokens = torch.stack([torch.stack([tokenizer(c)[0] for c in caps[:per_image]]) for caps in captions])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = clip.model.CLIP(**VIT_B32_TINY).float().train()
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
        bar = tqdm(range(steps), desc="tiny CLIP (synthetic)", unit="step")
        for _ in bar:
            idx = torch.randperm(len(images))[:batch_size]
            pick = torch.randint(per_image, (len(idx),))
            loss = contrastive_loss(model, images[idx], tokens[idx, pick])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out)
    log.info("tiny CLIP trained on synthetic captions (final batch loss %.3f) -> %s", loss.item(), out)
    return out
