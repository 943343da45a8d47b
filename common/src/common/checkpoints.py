"""Reading checkpoints with one-line errors, and the RNG state a checkpoint carries for an exact resume."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from common.errors import DataFormatError


def read_checkpoint(path: str | Path) -> dict:
    """A ``torch.load``-ed checkpoint, with one-line errors for a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a format problem of this file
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise DataFormatError(path, f"cannot read as a torch checkpoint ({first})") from None


def rng_state(device: torch.device) -> dict:
    """Python, NumPy and torch CPU generator states, and ``device``'s CUDA generator when it is a GPU."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
