"""Evaluate a saved MGCN checkpoint (``best.pt`` or ``last.pt``) on valid and test."""

from __future__ import annotations

from pathlib import Path

from common.checkpoints import load_weights, read_checkpoint
from mvgcn.config import MGCNConfig
from mvgcn.train import build_model, evaluate, load_data


def evaluate_checkpoint(path: str | Path, data: str | None = None, splits=("valid", "test")) -> dict:
    """Rebuild the model from the checkpoint's config (data folder overridable) and evaluate it."""
    path = Path(path)
    state = read_checkpoint(path, "MGCN")
    config, weights = MGCNConfig(**state["config"]), state["model"]
    if data:
        config.data = data
    dataset = load_data(config)
    model = build_model(config, dataset)
    load_weights(model, weights, path, config.data)
    result = {split: evaluate(model, dataset, split, config) for split in splits}
    return {"checkpoint": str(path), "synthetic": config.synthetic, "cl_loss": state.get("cl_weight"),
            "epoch": state.get("epoch"), **result}
