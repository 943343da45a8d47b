"""``befa eval``: a trained run's checkpoint (base or base + BeFA) on valid and test, MMRec's full ranking."""

from __future__ import annotations

from pathlib import Path

import torch

from befa.config import BeFAConfig
from befa.train import build_model, load_data
from common.checkpoints import load_weights, read_checkpoint
from mvgcn.train import evaluate


def evaluate_checkpoint(path: str | Path, data: str | None = None, device: str | None = None,
                        splits: tuple[str, ...] = ("valid", "test")) -> dict:
    """Rebuild the model from the checkpoint's config (data folder and device overridable) and evaluate it."""
    path = Path(path)
    state = read_checkpoint(path, "BeFA")
    config = BeFAConfig(**state["config"])
    config.data = data or config.data
    config.device = device or config.device
    dataset = load_data(config)
    model = build_model(config, dataset)
    load_weights(model, state["model"], path, config.data)
    with torch.inference_mode():
        result = {split: evaluate(model, dataset, split, config) for split in splits}
    return {"checkpoint": str(path), "model": config.model, "adapter": config.adapter, "synthetic": config.synthetic,
            "epoch": state.get("epoch"), **result}
