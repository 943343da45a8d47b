"""Training any base model, with or without BeFA, under MMRec's semantics as in the official BeFA repo.

The trainer is ``mvgcn``'s BPR trainer (MMRec: BPR batches of 2048 rows with one negative from the
items seen in training, Adam, LambdaLR 0.96^(epoch/50) per epoch, valid and test full ranking after
every epoch, early stopping on valid Recall@20 with patience 10, exact resume).
"""

from __future__ import annotations

from pathlib import Path

import torch

from befa.config import BeFAConfig
from befa.models import MODELS
from common.data.mmrec import MMRecData, load_mmrec
from mvgcn.train import BPRTrainer


def load_data(config: BeFAConfig) -> MMRecData:
    return load_mmrec(config.data, name=config.dataset)


def build_model(config: BeFAConfig, data: MMRecData) -> torch.nn.Module:
    return MODELS[config.model](config, data).to(config.device)


def trainer(config: BeFAConfig, data: MMRecData, run_dir: Path, max_epochs: int | None = None) -> BPRTrainer:
    return BPRTrainer(config, data, lambda: build_model(config, data), run_dir, max_epochs)
