"""Evaluate a saved LD4MRec checkpoint on valid and test (one-step or k-step inference, or several side by side)."""

from __future__ import annotations

from pathlib import Path

from common.checkpoints import read_checkpoint
from common.errors import DataFormatError
from ld4mrec.config import LD4MRecConfig
from ld4mrec.inference_report import compare_inference, inference_table
from ld4mrec.train import evaluate, load_data, restore_model


def _load(path: Path, data: str | None, reverse_steps: int | None = None):
    state = read_checkpoint(path, "LD4MRec")
    config = LD4MRecConfig(**state["config"])
    if data:
        config.data = data
    if reverse_steps is not None:
        config.reverse_steps = reverse_steps
        config.validate(path)
    dataset = load_data(config)
    return state, config, dataset, restore_model(config, dataset, state["model"], path)


def evaluate_checkpoint(path: str | Path, data: str | None = None, reverse_steps: int | None = None) -> dict:
    path = Path(path)
    state, config, dataset, model = _load(path, data, reverse_steps)
    return {"checkpoint": str(path), "synthetic": config.synthetic, "epoch": state.get("epoch"),
            "reverse_steps": config.reverse_steps,
            **{split: evaluate(model, dataset, split, config) for split in ("valid", "test")}}


def compare_checkpoint(path: str | Path, data: str | None = None, steps: list[int] | None = None) -> str:
    """The one-step vs k-step table (``inference_report``) of one checkpoint; ``steps`` 0 = one step."""
    path = Path(path)
    _, config, dataset, model = _load(path, data)
    for k in steps or []:
        if not 0 <= k <= config.steps:
            raise DataFormatError(path, f"reverse steps must lie in [0, steps] = [0, {config.steps}], got {k}")
    return inference_table(compare_inference(model, dataset, config, steps), config)
