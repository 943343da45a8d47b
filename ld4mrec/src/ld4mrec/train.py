"""Training with MMRec evaluation semantics, exact resume, and early stopping on valid Recall@20.

An epoch visits every user with training interactions once, in a seeded random order, in batches of
``batch_size`` users (MMRec's full-sampling loader; DiffRec's user batches). The epoch loop, early
stopping on the valid metric and the checkpoints are ``common.fit.fit``'s.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from common.checkpoints import load_weights
from common.configs import save_config
from common.data.mmrec import MMRecData, load_mmrec
from common.fit import Progress, finite_step, fit, log_skipped
from common.metrics.ranking import evaluate_full_ranking
from common.rng import rng_state, set_rng_state, set_seed
from ld4mrec.config import LD4MRecConfig
from ld4mrec.model import LD4MRec

log = logging.getLogger(__name__)


def load_data(config: LD4MRecConfig) -> MMRecData:
    return load_mmrec(config.data, name=config.dataset)


def build_model(config: LD4MRecConfig, data: MMRecData) -> LD4MRec:
    features = {k.removesuffix("_feat"): v for k, v in data.features.items()}
    return LD4MRec(config, data.splits["train"], features).to(config.device)


def restore_model(config: LD4MRecConfig, data: MMRecData, weights: dict, checkpoint: Path) -> LD4MRec:
    """The model of ``config`` with a checkpoint's weights (one line when they do not fit the data)."""
    model = build_model(config, data)
    load_weights(model, weights, checkpoint, config.data)
    return model


def evaluate(model: LD4MRec, data: MMRecData, split: str, config: LD4MRecConfig,
             reverse_steps: int | None = None) -> dict[str, float]:
    """Full-ranking metrics of ``split`` from one-step inference (or ``reverse_steps`` reverse steps)."""
    model.eval()
    device = torch.device(config.device)
    result = evaluate_full_ranking(lambda u: model.predict(u.to(device), reverse_steps),
                                   data.eval_batches(split, config.eval_batch_size), config.topk)
    model.train()
    return result


class Trainer:
    def __init__(self, config: LD4MRecConfig, data: MMRecData, run_dir: Path, max_epochs: int | None = None):
        self.config, self.data, self.run_dir, self.max_epochs = config, data, Path(run_dir), max_epochs
        set_seed(config.seed)
        self.model = build_model(config, data)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.learning_rate,
                                           weight_decay=config.weight_decay)
        self.users = np.flatnonzero(np.diff(data.splits["train"].indptr) > 0)
        self.rng = np.random.default_rng(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.epoch = 0

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "diffusion": self.model.diffusion.state_dict(), "rng": self.rng.bit_generator.state,
                "generator": self.generator.get_state(), "global_rng": rng_state(),
                "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.model.diffusion.load_state_dict(state["diffusion"])
        self.rng.bit_generator.state = state["rng"]
        self.generator.set_state(state["generator"])
        set_rng_state(state["global_rng"])  # C-Net dropout on CUDA: the CUDA RNG
        self.epoch = state["epoch"]

    def best_checkpoint(self) -> dict:
        return {"model": self.model.state_dict(), "config": self.config.to_dict()}

    def evaluate(self, split: str) -> dict[str, float]:
        return evaluate(self.model, self.data, split, self.config)

    def train_epoch(self) -> float:
        batches = torch.from_numpy(self.rng.permutation(self.users)).split(self.config.batch_size)
        total, skipped = 0.0, 0
        for step, users in enumerate(tqdm(batches, desc=f"epoch {self.epoch}", leave=False, disable=None)):
            loss = self.model.loss(users.to(self.config.device), self.generator)
            if not finite_step({"loss": loss}, self.epoch, step, self.config.skip_nonfinite):
                skipped += 1
                continue
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach())
        log_skipped(skipped, self.epoch)
        self.epoch += 1
        return total / max(1, len(batches) - skipped)

    def fit(self, resume: bool = False) -> Progress:
        save_config(self.config, self.run_dir / "config.yaml")
        return fit(self, self.run_dir, epochs=self.config.epochs, stopping_step=self.config.stopping_step,
                   valid_metric=self.config.valid_metric, resume=resume, max_epochs=self.max_epochs,
                   label="[SYNTHETIC] " if self.config.synthetic else "")
