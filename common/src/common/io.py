"""The bottom layer's file I/O: atomic writes (a kill never leaves half a file), strict weight-file reads, and
``metrics.jsonl`` cut back to a checkpoint."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from common.errors import DataFormatError


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file in the same folder, then rename: a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A weights file saved with ``torch.save(state_dict)``, read with ``weights_only``; a corrupt file or one that
    is not a dict of tensors is a one-line ``DataFormatError`` naming it."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a corrupt file
        raise DataFormatError(path, f"not a readable torch state dict ({type(err).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataFormatError(path, f"not a state dict of tensors (found {type(state).__name__})")
    return state


def truncate_metrics(path: Path, epoch: int, key: str = "epoch") -> None:
    """Drop the ``metrics.jsonl`` records whose ``key`` (epoch, or step) is >= ``epoch`` (written after the checkpoint a
    resumed run starts from) and a last line cut short by a kill."""
    if path.is_file():
        kept = []
        for line in path.read_text().splitlines():
            try:
                if json.loads(line)[key] < epoch:
                    kept.append(line)
            except (ValueError, KeyError):  # a line cut short by the kill
                continue
        path.write_text("".join(ln + "\n" for ln in kept))
