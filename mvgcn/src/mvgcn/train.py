"""MMRec training semantics for MGCN (``src/common/trainer.py``), with exact resume.

Per epoch: shuffled BPR rows with one negative each; loss = BPR + reg_weight * reg + lambda_C * L_C;
Adam; LambdaLR factor a^(epoch/b) stepped once per epoch. The epoch loop, early stopping on the valid
metric and the checkpoints are ``common.fit.fit``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

from common.configs import save_config
from common.data.bpr import BPRSampler
from common.data.mmrec import MMRecData, load_mmrec
from common.fit import Progress, finite_step, fit, log_skipped
from common.metrics.ranking import evaluate_full_ranking
from common.rng import rng_state, set_rng_state, set_seed
from mvgcn.config import MGCNConfig
from mvgcn.graphs import cached_knn_graph, user_item_graph
from mvgcn.model import MGCN

log = logging.getLogger(__name__)
MODALITIES = {"image_feat": "image", "text_feat": "text"}


def load_data(config: MGCNConfig) -> MMRecData:
    return load_mmrec(config.data, name=config.dataset)


def build_model(config: MGCNConfig, data: MMRecData, cl_weight: float | None = None) -> MGCN:
    """MGCN with its graphs: the normalised U-I adjacency and one cached kNN graph per modality."""
    norm_adj, user_item = user_item_graph(data.splits["train"])
    features = {MODALITIES[k]: torch.from_numpy(v) for k, v in data.features.items()}
    graphs = {m: cached_knn_graph(data.features[k], config.knn_k, config.cache_dir, f"{config.dataset}_{m}")
              for k, m in MODALITIES.items() if k in data.features}
    cl_weight = config.grid()[0] if cl_weight is None else cl_weight
    return MGCN(config, data.n_users, data.n_items, features, norm_adj, user_item, graphs,
                cl_weight).to(config.device)


@torch.inference_mode()
def evaluate(model: torch.nn.Module, data: MMRecData, split: str, config) -> dict[str, float]:
    """Full-ranking metrics of ``split`` (train items masked) from one ``model.embeddings()`` pass."""
    model.eval()
    users, items = model.embeddings()
    result = evaluate_full_ranking(lambda u: users[u.to(users.device)] @ items.T,
                                   data.eval_batches(split, config.eval_batch_size), config.topk)
    model.train()
    return result


class BPRTrainer:
    """MMRec's BPR training of any model with ``pre_epoch()``, ``loss(u, i+, j-)`` and ``embeddings()``.

    ``make_model`` is called after seeding, so a run's initialisation depends only on ``config.seed``.
    """

    def __init__(self, config, data: MMRecData, make_model: Callable[[], torch.nn.Module], run_dir: Path,
                 max_epochs: int | None = None) -> None:
        self.config, self.data, self.run_dir, self.max_epochs = config, data, Path(run_dir), max_epochs
        set_seed(config.seed)
        self.model = make_model()
        # fused: the same Adam update in one kernel per tensor group (several times faster on CPU than the
        # default per-tensor loop; MGCN's 7050 x 4096 fine-tuned image features dominate the step)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate, fused=True)
        factor, period = config.learning_rate_scheduler
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda e: factor ** (e / period))
        self.sampler = BPRSampler(data.train_users, data.train_items, data.n_items,
                                  batch_size=config.train_batch_size, seed=config.seed)
        self.epoch = 0

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "sampler": self.sampler.state_dict(),
                "rng": rng_state(), "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["sampler"])
        set_rng_state(state["rng"])  # dropout on CUDA draws from the CUDA RNG
        self.epoch = state["epoch"]

    def best_checkpoint(self) -> dict:
        return {"model": self.model.state_dict(), "config": self.config.to_dict()}

    def evaluate(self, split: str) -> dict[str, float]:
        return evaluate(self.model, self.data, split, self.config)

    def train_epoch(self) -> dict[str, float]:
        """``pre_epoch()``, one pass over the shuffled BPR rows, one scheduler step; mean loss parts."""
        self.model.pre_epoch()
        sums: dict[str, float] = {}
        dev, skipped = self.config.device, 0
        for step, (users, pos, neg) in enumerate(tqdm(self.sampler.epoch(), total=len(self.sampler),
                                                      desc=f"epoch {self.epoch}", leave=False, disable=None)):
            losses = self.model.loss(users.to(dev), pos.to(dev), neg.to(dev))
            if not finite_step(losses, self.epoch, step, self.config.skip_nonfinite):
                skipped += 1
                continue
            self.optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            self.optimizer.step()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
        self.scheduler.step()
        log_skipped(skipped, self.epoch)
        self.epoch += 1
        return {k: v / max(1, len(self.sampler) - skipped) for k, v in sums.items() if k != "total"}

    def fit(self, resume: bool = False, **resolved) -> Progress:
        save_config(self.config, self.run_dir / "config.yaml", **resolved)
        return fit(self, self.run_dir, epochs=self.config.epochs, stopping_step=self.config.stopping_step,
                   valid_metric=self.config.valid_metric, resume=resume, max_epochs=self.max_epochs,
                   label="[SYNTHETIC] " if self.config.synthetic else "")


class Trainer(BPRTrainer):
    """Trains one MGCN with one lambda_C in ``run_dir``; ``fit(resume=True)`` continues from last.pt."""

    def __init__(self, config: MGCNConfig, data: MMRecData, cl_weight: float, run_dir: Path,
                 max_epochs: int | None = None) -> None:
        super().__init__(config, data, lambda: build_model(config, data, cl_weight), run_dir, max_epochs)
        self.cl_weight = cl_weight

    def best_checkpoint(self) -> dict:
        return {**super().best_checkpoint(), "cl_weight": self.cl_weight}

    def fit(self, resume: bool = False) -> Progress:
        return super().fit(resume, cl_loss=self.cl_weight)
