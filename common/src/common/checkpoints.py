"""Reading the checkpoints this repository writes, and loading their weights, with one-line errors naming the file."""

from __future__ import annotations

from pathlib import Path

import torch

from common.errors import DataFormatError


def read_checkpoint(path: str | Path, kind: str = "training", required: tuple[str, ...] = ()) -> dict:
    """``torch.load`` of a checkpoint onto the CPU; a missing or unreadable file, or one without the ``required``
    entries of a ``kind`` checkpoint, is a one-line ``DataFormatError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a format problem of this file
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise DataFormatError(path, f"unreadable checkpoint ({first})") from None
    missing = [k for k in required if not isinstance(state, dict) or k not in state]
    if missing:
        raise DataFormatError(path, f"not a {kind} checkpoint (no {', '.join(missing)} entry)")
    return state


def load_weights(model: torch.nn.Module, weights: dict, checkpoint: Path, data: str) -> None:
    """``model.load_state_dict`` with a one-line error when the checkpoint does not fit the data."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:200]
        raise DataFormatError(checkpoint, f"does not fit the data in {data} ({detail})") from None
