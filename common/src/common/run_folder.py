"""A training run's folder ``<runs_dir>/<dataset>/<run_name>/``: opening it (fresh or resumed, with one-line
errors), recording its config, and reading back its ``metrics.jsonl``."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sized
from datetime import datetime
from pathlib import Path
from typing import Any

from common import distributed
from common.checkpoints import read_checkpoint
from common.distributed import Dist
from common.errors import DataFormatError
from common.io import truncate_metrics
from common.runs import save_config, set_seed

log = logging.getLogger(__name__)


def run_directory(config) -> Path:
    """``config.runs_dir / config.dataset / config.run_name`` (a timestamp when unnamed, rank 0's on every rank)."""
    name = config.run_name or datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(config.runs_dir) / config.dataset / distributed.broadcast(name)


def open_run(config, resume: bool, where: Dist, make_trainer: Callable[[], Any], train_set: Sized
             ) -> tuple[Path, Any]:
    """Start of a run: the run directory, which must hold a checkpoint exactly when resuming; the seed; the
    trainer; a train split of at least one batch per process. One-line errors."""
    run_dir = run_directory(config)
    last = run_dir / "checkpoints" / "last.pt"
    if resume and not last.is_file():
        raise DataFormatError(last, "nothing to resume (no checkpoint of this run)")
    if not resume and last.is_file():
        raise DataFormatError(run_dir, "run directory already holds a checkpoint; pass --resume or a new --run-name")
    set_seed(config.seed)
    trainer = make_trainer()
    if len(train_set) < config.batch_size * where.world_size:
        raise DataFormatError(Path(config.data), f"train split has {len(train_set)} images, fewer than one batch "
                                                 f"({config.batch_size} x {where.world_size} processes)")
    return run_dir, trainer


def resume_or_record(trainer, config, run_dir: Path, resume: bool, where: Dist) -> None:
    """Load ``checkpoints/last.pt`` into ``trainer`` when resuming (and drop the ``metrics.jsonl`` records written
    after it), else write the run's ``config.yaml``."""
    last = run_dir / "checkpoints" / "last.pt"
    if resume:
        trainer.load_state_dict(read_checkpoint(last), last)
        if where.is_main:
            truncate_metrics(run_dir / "metrics.jsonl", trainer.epoch + 1)
        log.info("resumed %s at epoch %d", run_dir, trainer.epoch)
    elif where.is_main:
        save_config(config, run_dir / "config.yaml")


def read_metrics(run_dir: Path) -> list[dict]:
    """The records of ``run_dir/metrics.jsonl`` (none when the file is absent)."""
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
