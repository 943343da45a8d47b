"""Does the editor do what the text asks? On the SYNTHETIC shapes data only (not a paper metric).

Every test scene (the CUB crop, i.e. exactly the synthetic scene, at the config's imsize) is edited with its first
caption in which the colour word is replaced by another planted colour (the k-th image gets the (k mod 5 + 1)-th
colour after its own, so every pair of colours occurs). Reported:
- ``colour_hit``: share of edits whose dominant colour (``common.synthetic.text_image.dominant_colour``) is the
  requested one; ``colour_chance`` = 1 / number of colours; ``colour_kept``: share still showing the source colour;
- ``background_l1``: mean |x' - x| in [0, 1] units over the pixels more than ``margin`` px outside the shape's box,
  and ``shape_l1`` the same inside the box (an editor that only recolours the shape has a small first, large second).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms import functional as TF  # noqa: N812

from common.data.text_image import IMAGE_DIRS, load_cub_bboxes, load_filenames, load_image, read_captions
from common.errors import DataFormatError
from common.synthetic.text_image import COLOURS, caption_colour, dominant_colour

from .config import DENetConfig
from .sample import edit, encode_texts


def recoloured(caption: str, colour: str) -> str:
    """``caption`` with its first colour word replaced by ``colour``."""
    old = caption_colour(caption)
    words = caption.split(" ")
    i = next(i for i, w in enumerate(words) if w.lower().strip(",.") == old)
    words[i] = words[i].lower().replace(old, colour)
    return " ".join(words)


def edit_requests(config: DENetConfig) -> tuple[list[str], torch.Tensor, list[str], list[str], np.ndarray]:
    """Texts, sources [N, 3, S, S] in [-1, 1] (S = imsize), requested and source colours, shape boxes [N, 4] at S px."""
    root = Path(config.data)
    meta_path = root / "metadata.json"
    if not meta_path.is_file():
        raise DataFormatError(meta_path, "the colour-edit check needs the synthetic data's metadata.json")
    meta = json.loads(meta_path.read_text())
    size = config.imsize
    scale = size / meta["image_size"]
    keys = load_filenames(root, "test")
    boxes = load_cub_bboxes(root / "CUB_200_2011")
    names = list(COLOURS)
    sources, requested, texts, own, shape_boxes = [], [], [], [], []
    for k, key in enumerate(keys):
        scene = load_image(root / IMAGE_DIRS["birds"] / f"{key}.jpg", boxes[key]).resize((size, size))
        sources.append(TF.normalize(TF.to_tensor(scene), [0.5] * 3, [0.5] * 3))
        caption = read_captions(root / "text" / f"{key}.txt")[0]
        colour = meta["items"][key]["colour"]
        want = names[(names.index(colour) + 1 + k % (len(names) - 1)) % len(names)]
        texts.append(recoloured(caption, want))
        requested.append(want)
        own.append(colour)
        shape_boxes.append(np.array(meta["items"][key]["shape_bbox"], dtype=np.float64) * scale)
    return texts, torch.stack(sources), requested, own, np.stack(shape_boxes)


@torch.inference_mode()
def colour_edit_check(nets, config: DENetConfig, device: torch.device, margin: int = 8) -> dict:
    texts, sources, requested, own, boxes = edit_requests(config)
    predicted: list[str | None] = []
    bg, fg = [], []
    ys, xs = np.mgrid[:config.imsize, :config.imsize]
    for start in range(0, len(texts), config.eval_batch_size):
        sl = slice(start, start + config.eval_batch_size)
        _, sent, _ = encode_texts(nets.text_encoder, config, texts[sl], device)
        src = sources[sl].to(device)
        out = edit(nets.netG, sent, src).clamp(-1, 1)
        unit = ((out + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()
        predicted += dominant_colour(unit)
        delta = ((out - src).abs() / 2).mean(1).cpu().numpy()  # [B, H, W] in [0, 1] units
        for d, (x0, y0, x1, y1) in zip(delta, boxes[sl]):
            inside = (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
            outside = (xs < x0 - margin) | (xs >= x1 + margin) | (ys < y0 - margin) | (ys >= y1 + margin)
            fg.append(float(d[inside].mean()))
            bg.append(float(d[outside].mean()))
    n = len(texts)
    return {"colour_hit": sum(p == r for p, r in zip(predicted, requested)) / n,
            "colour_kept": sum(p == o for p, o in zip(predicted, own)) / n, "colour_chance": 1 / len(COLOURS),
            "background_l1": float(np.mean(bg)), "shape_l1": float(np.mean(fg)), "n_edits": n}
