"""A training run's folder ``runs/<paper>/<dataset>/<run_name>/`` (``runs_dir`` defaults to ``runs/<paper>``): the one
rule for naming and reusing it, opening it (fresh or resumed, with one-line errors), recording its config, and
reading back its ``metrics.jsonl``."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sized
from datetime import datetime
from pathlib import Path
from typing import Any

from common import distributed
from common.checkpoints import read_checkpoint
from common.configs import save_config
from common.distributed import Dist
from common.errors import DataFormatError
from common.io import truncate_metrics
from common.rng import set_seed

log = logging.getLogger(__name__)


def run_directory(config, resume: bool = False) -> Path:
    """``config.runs_dir / config.dataset / config.run_name``; unnamed, a new timestamp, or with ``resume`` the
    newest run of the dataset. Rank 0's choice on every rank."""
    base = Path(config.runs_dir) / config.dataset
    name = config.run_name
    if not name and resume:
        runs = sorted((p for p in base.glob("*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
        name = runs[-1].name if runs else None
    return base / distributed.broadcast(name or datetime.now().strftime("%Y%m%d-%H%M%S"))


def check_run_directory(run_dir: Path, resume: bool) -> None:
    """The run contract: ``--resume`` needs a checkpoint in ``run_dir`` (a grid's runs count), and a fresh run
    into a folder that holds one is refused. One line naming the folder."""
    held = run_dir.is_dir() and any(run_dir.rglob("last.pt"))
    if resume and not held:
        raise DataFormatError(run_dir, "nothing to resume (no checkpoints/last.pt in this run folder)")
    if not resume and held:
        raise DataFormatError(run_dir, "run folder already holds a checkpoint; pass --resume or a new --run-name")


def open_run(config, resume: bool, where: Dist, make_trainer: Callable[[], Any], train_set: Sized
             ) -> tuple[Path, Any]:
    """Start of a run: the run directory, which must hold a checkpoint exactly when resuming; the seed; the
    trainer; a train split of at least one batch per process. One-line errors."""
    run_dir = run_directory(config, resume)
    check_run_directory(run_dir, resume)
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
