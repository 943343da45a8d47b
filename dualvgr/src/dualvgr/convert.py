"""``dualvgr convert``: an official DualVGR checkpoint -> ours, through the strict key map of ``official``."""

from __future__ import annotations

from pathlib import Path

from common.checkpoints import read_checkpoint
from common.data.videoqa import load_vocab, videoqa_files
from common.errors import DataFormatError
from common.io import atomic_save
from dualvgr.official import official_config, official_state, to_ours
from dualvgr.train import build_model


def convert(official: str | Path, out: str | Path, config: str | Path, data: str | None = None) -> Path:
    """Write ``out`` in ``best.pt``'s layout (model, config, vocab, and epoch when the file has one), which ``eval``
    and ``train --init-from`` read. The architecture is read off the weights; dataset, data and clips come from the
    YAML ``config`` and the vocabulary from the data folder (the official file holds neither)."""
    path = Path(official)
    checkpoint = read_checkpoint(path, "official DualVGR")
    state = official_state(checkpoint)
    if state is None:
        raise DataFormatError(path, "not an official DualVGR checkpoint (no linguistic_input_unit, visual_input_unit, "
                                    "... keys)")
    run_config = official_config(state, path, config, data=data)
    vocab = load_vocab(videoqa_files(run_config.data, run_config.dataset, "train").vocab)
    result = {"model": to_ours(state, build_model(run_config, vocab), path), "config": run_config.to_dict(),
              "vocab": vocab}
    if "epoch" in checkpoint:  # the official trainer's 0-based epoch index; ours counts the epochs trained
        result["epoch"] = int(checkpoint["epoch"]) + 1
    atomic_save(result, out)
    return Path(out)
