"""Evaluate a saved LD4MRec checkpoint on valid and test (one-step or k-step inference)."""

from __future__ import annotations

from pathlib import Path

import torch

from common.errors import DataFormatError
from ld4mrec.config import LD4MRecConfig
from ld4mrec.train import build_model, evaluate, load_data


def evaluate_checkpoint(path: str | Path, data: str | None = None, reverse_steps: int | None = None) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        config = LD4MRecConfig(**state["config"])
        weights = state["model"]
    except (KeyError, TypeError) as err:
        raise DataFormatError(path, f"not an LD4MRec checkpoint (missing {err})") from None
    except Exception as err:
        raise DataFormatError(path, f"unreadable checkpoint ({type(err).__name__})") from None
    if data:
        config.data = data
    if reverse_steps is not None:
        config.reverse_steps = reverse_steps
        config.validate(path)
    dataset = load_data(config)
    model = build_model(config, dataset)
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:200]
        raise DataFormatError(path, f"does not fit the data in {config.data} ({detail})") from None
    return {"checkpoint": str(path), "synthetic": config.synthetic, "epoch": state.get("epoch"),
            "reverse_steps": config.reverse_steps,
            **{split: evaluate(model, dataset, split, config) for split in ("valid", "test")}}
