"""Evaluate a saved MGCN checkpoint (``best.pt`` or ``last.pt``) on valid and test."""

from __future__ import annotations

from pathlib import Path

import torch

from common.errors import DataFormatError
from mvgcn.config import MGCNConfig
from mvgcn.train import build_model, evaluate, load_data


def evaluate_checkpoint(path: str | Path, data: str | None = None, splits=("valid", "test")) -> dict:
    """Rebuild the model from the checkpoint's config (data folder overridable) and evaluate it."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        config = MGCNConfig(**state["config"])
        weights = state["model"]
    except (KeyError, TypeError) as err:
        raise DataFormatError(path, f"not an MGCN checkpoint (missing {err})") from None
    except Exception as err:
        raise DataFormatError(path, f"unreadable checkpoint ({type(err).__name__})") from None
    if data:
        config.data = data
    dataset = load_data(config)
    model = build_model(config, dataset)
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:200]
        raise DataFormatError(path, f"does not fit the data in {config.data} ({detail})") from None
    result = {split: evaluate(model, dataset, split, config) for split in splits}
    return {"checkpoint": str(path), "synthetic": config.synthetic, "cl_loss": state.get("cl_weight"),
            "epoch": state.get("epoch"), **result}
