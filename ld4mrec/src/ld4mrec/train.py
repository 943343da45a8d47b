"""Training with MMRec evaluation semantics, exact resume, and early stopping on valid Recall@20.

An epoch visits every user with training interactions once, in a seeded random order, in batches of
``batch_size`` users (MMRec's full-sampling loader; DiffRec's user batches). After each epoch valid
and test are ranked over all items with training items masked; the valid metric, rounded to 4
decimals as MMRec reports it, drives early stopping (stop once more than ``stopping_step`` epochs fail
to improve it) and selects the reported test numbers.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from common.data.mmrec import MMRecData, load_mmrec
from common.errors import DataFormatError
from common.metrics.ranking import evaluate_full_ranking
from common.runs import atomic_save, save_config, set_seed
from ld4mrec.config import LD4MRecConfig
from ld4mrec.model import LD4MRec

log = logging.getLogger(__name__)


def load_data(config: LD4MRecConfig) -> MMRecData:
    return load_mmrec(config.data, name=config.dataset)


def build_model(config: LD4MRecConfig, data: MMRecData) -> LD4MRec:
    features = {k.removesuffix("_feat"): v for k, v in data.features.items()}
    return LD4MRec(config, data.splits["train"], features).to(config.device)


def evaluate(model: LD4MRec, data: MMRecData, split: str, config: LD4MRecConfig,
             reverse_steps: int | None = None) -> dict[str, float]:
    """Full-ranking metrics of ``split`` from one-step inference (or ``reverse_steps`` reverse steps)."""
    model.eval()
    device = torch.device(config.device)
    result = evaluate_full_ranking(lambda u: model.predict(u.to(device), reverse_steps),
                                   data.eval_batches(split, config.eval_batch_size), config.topk)
    model.train()
    return result


@dataclass
class Progress:
    epoch: int = 0
    best_score: float = -1.0
    bad_epochs: int = 0
    best_epoch: int = -1
    best_valid: dict = field(default_factory=dict)
    best_test: dict = field(default_factory=dict)
    stopped: bool = False


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
        self.progress = Progress()

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "diffusion": self.model.diffusion.state_dict(), "rng": self.rng.bit_generator.state,
                "generator": self.generator.get_state(), "torch_rng": torch.get_rng_state(),
                "progress": self.progress.__dict__.copy(), "config": self.config.to_dict()}

    def restore(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location=self.config.device, weights_only=False)
        except Exception as err:
            raise DataFormatError(path, f"unreadable checkpoint ({type(err).__name__})") from None
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.model.diffusion.load_state_dict(state["diffusion"])
        self.rng.bit_generator.state = state["rng"]
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.progress = Progress(**state["progress"])
        metrics = self.run_dir / "metrics.jsonl"
        if metrics.is_file():  # drop lines of epochs after the checkpoint (a kill between the two writes)
            kept = [ln for ln in metrics.read_text().splitlines() if json.loads(ln)["epoch"] < self.progress.epoch]
            metrics.write_text("".join(ln + "\n" for ln in kept))

    def train_epoch(self) -> float:
        order = torch.from_numpy(self.rng.permutation(self.users))
        batches = order.split(self.config.batch_size)
        total = 0.0
        for users in tqdm(batches, desc=f"epoch {self.progress.epoch}", leave=False, disable=None):
            loss = self.model.loss(users.to(self.config.device), self.generator)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at epoch {self.progress.epoch}")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach())
        return total / len(batches)

    def fit(self, resume: bool = False) -> Progress:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        last = self.run_dir / "checkpoints" / "last.pt"
        if resume and last.is_file():
            self.restore(last)
            log.info("resumed %s at epoch %d", self.run_dir, self.progress.epoch)
        save_config(self.config, self.run_dir / "config.yaml")
        p, cfg, ran = self.progress, self.config, 0
        while not p.stopped and p.epoch < cfg.epochs and (self.max_epochs is None or ran < self.max_epochs):
            start = time.perf_counter()
            loss = self.train_epoch()
            train_s = time.perf_counter() - start
            valid, test = evaluate(self.model, self.data, "valid", cfg), evaluate(self.model, self.data, "test", cfg)
            score = round(valid[cfg.valid_metric], 4)
            improved = score > p.best_score
            if improved:
                p.best_score, p.bad_epochs, p.best_epoch, p.best_valid, p.best_test = score, 0, p.epoch, valid, test
                atomic_save({"model": self.model.state_dict(), "config": cfg.to_dict(), "epoch": p.epoch},
                            self.run_dir / "checkpoints" / "best.pt")
            else:
                p.bad_epochs += 1
                p.stopped = p.bad_epochs > cfg.stopping_step
            with (self.run_dir / "metrics.jsonl").open("a") as f:
                f.write(json.dumps({"epoch": p.epoch, "train_seconds": round(train_s, 3), "loss": loss,
                                    "valid": valid, "test": test, "best": improved}) + "\n")
            log.info("%sepoch %d  loss %.5f  valid %s %.4f  test %.4f%s  (%.1fs)", "[SYNTHETIC] " if cfg.synthetic
                     else "", p.epoch, loss, cfg.valid_metric, valid[cfg.valid_metric], test[cfg.valid_metric],
                     "  *" if improved else "", train_s)
            p.epoch += 1
            ran += 1
            atomic_save(self.state(), last)
        return p
