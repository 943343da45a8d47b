"""``befa attribute``: before/after-adapter attribution maps of one item from a trained base + BeFA model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from befa.attribution import (
    Transform,
    adapter_transform,
    highlight_text_attribution,
    image_attribution,
    plot_image_attribution,
    text_attribution,
)
from befa.config import BeFAConfig
from befa.features import load_clip, open_image, read_items
from befa.train import build_model, load_data
from common.checkpoints import load_weights, read_checkpoint
from common.errors import DataFormatError


def model_transform(model: torch.nn.Module, modality: str, item: int, source: Path) -> Transform:
    """What the trained model makes of a ``modality`` feature of ``item`` before its graphs, as its own forward
    computes it: LATTICE and FREEDOM BeFA(project(e)); MGCN its purifier, E_id[item] * BeFA(project(e))."""
    if hasattr(model, "trs"):  # LATTICE
        return adapter_transform(model.trs[modality], model.adapters[modality])
    if hasattr(model, f"{modality}_trs"):  # FREEDOM
        return adapter_transform(getattr(model, f"{modality}_trs"), model.adapters[modality])
    if hasattr(model, "model") and hasattr(model.model, "purifiers"):  # MGCN: the gate by the item's ID embedding
        purifier = model.model.purifiers[modality]
        return adapter_transform(purifier.project, purifier.adapter,
                                 item_embedding=model.model.item_id_embedding.weight[item].detach())
    raise DataFormatError(source, "VBPR projects text and image together, so it has no per-modality map")


def attribute(checkpoint: str | Path, items: str | Path, clip_weights: str | Path, item: int, out: str | Path,
              grid: tuple[int, int] = (4, 4), device: str = "cpu") -> dict:
    """Write ``out`` (PNG: image, before, after) and ``out`` with ``.md`` (highlighted words); return scores."""
    checkpoint, out = Path(checkpoint), Path(out)
    state = read_checkpoint(checkpoint, "BeFA")
    config = BeFAConfig(**state["config"])
    if not config.adapter:
        raise DataFormatError(checkpoint, "was trained without the adapter; attribute a base + BeFA run")
    data = load_data(config)
    model = build_model(config, data)
    load_weights(model, state["model"], checkpoint, config.data)
    table = read_items(items)
    if not 0 <= item < len(table):
        raise DataFormatError(Path(items) / "items.tsv", f"has no item {item} (items 0..{len(table) - 1})")
    clip_model, preprocess = load_clip(clip_weights, device)
    image = open_image(table.image_paths[item])
    image_map = image_attribution(clip_model, preprocess, image, grid,
                                  model_transform(model, "image", item, checkpoint), device=device)
    words = text_attribution(clip_model, table.texts[item], model_transform(model, "text", item, checkpoint),
                             device=device)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_image_attribution(image, image_map, out)
    out.with_suffix(".md").write_text(highlight_text_attribution(words, fmt="markdown") + "\n")
    return {"png": str(out), "image_before": np.round(image_map.before, 4).tolist(),
            "image_after": np.round(image_map.after, 4).tolist(), "words": words.words}
