"""Evaluate a saved LD4MRec checkpoint on valid and test (one-step or k-step inference)."""

from __future__ import annotations

from pathlib import Path

from common.checkpoints import load_weights, read_checkpoint
from ld4mrec.config import LD4MRecConfig
from ld4mrec.train import build_model, evaluate, load_data


def evaluate_checkpoint(path: str | Path, data: str | None = None, reverse_steps: int | None = None) -> dict:
    path = Path(path)
    state = read_checkpoint(path, "LD4MRec")
    config, weights = LD4MRecConfig(**state["config"]), state["model"]
    if data:
        config.data = data
    if reverse_steps is not None:
        config.reverse_steps = reverse_steps
        config.validate(path)
    dataset = load_data(config)
    model = build_model(config, dataset)
    load_weights(model, weights, path, config.data)
    return {"checkpoint": str(path), "synthetic": config.synthetic, "epoch": state.get("epoch"),
            "reverse_steps": config.reverse_steps,
            **{split: evaluate(model, dataset, split, config) for split in ("valid", "test")}}
