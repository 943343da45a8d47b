"""Does the generator follow the caption? On the SYNTHETIC shapes data only: the share of generated images whose
dominant colour (``common.synthetic.text_image.dominant_colour``) is the colour their caption names, against the
majority-colour baseline. Not a paper metric; the embedded default's evidence that training learned the text.
"""

from __future__ import annotations

from pathlib import Path

import torch

from common.data.text_image import ClipTokenizer, load_filenames, read_captions
from common.synthetic.text_image import caption_colour, dominant_colour

from .config import GALIPConfig
from .sample import generate


@torch.inference_mode()
def colour_agreement(nets, config: GALIPConfig, device: torch.device, seed: int = 0) -> dict:
    """``{"colour_agreement", "colour_baseline", "n"}`` over the first caption of every test image, one sample each."""
    captions = [read_captions(Path(config.data) / "text" / f"{key}.txt")[0]
                for key in load_filenames(config.data, "test")]
    targets = [caption_colour(c) for c in captions]
    tokenizer = ClipTokenizer()
    tokens = torch.stack([tokenizer(c)[0] for c in captions])
    noise = torch.randn(len(captions), config.z_dim, generator=torch.Generator().manual_seed(seed))
    predicted: list[str | None] = []
    for start in range(0, len(captions), config.eval_batch_size):
        end = start + config.eval_batch_size
        images = generate(nets.netG, nets.text_encoder, tokens[start:end].to(device), noise[start:end].to(device))
        unit = ((images.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()
        predicted += dominant_colour(unit)
    hits = sum(p == t for p, t in zip(predicted, targets))
    baseline = max(targets.count(c) for c in set(targets)) / len(targets)
    return {"colour_agreement": hits / len(targets), "colour_baseline": baseline, "n": len(targets)}
