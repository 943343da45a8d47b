"""MMRec training semantics for MGCN (``src/common/trainer.py``), with exact resume.

Per epoch: shuffled BPR rows with one negative each; loss = BPR + reg_weight * reg + lambda_C * L_C;
Adam; LambdaLR factor a^(epoch/b) stepped once per epoch. After each epoch valid and test are
evaluated; the valid metric (rounded to 4 decimals, as MMRec's evaluator reports it) drives early
stopping, which stops once the count of non-improving epochs exceeds ``stopping_step``. The test
numbers reported are those of the best valid epoch.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from tqdm import tqdm

from common.data.bpr import BPRSampler
from common.data.mmrec import MMRecData, load_mmrec
from common.errors import DataFormatError
from common.metrics.ranking import evaluate_full_ranking
from common.runs import atomic_save, set_seed
from mvgcn.config import MGCNConfig
from mvgcn.graphs import cached_knn_graph, user_item_graph
from mvgcn.losses import bpr_loss, embedding_regulariser, info_nce
from mvgcn.model import MGCN

log = logging.getLogger(__name__)
MODALITIES = {"image_feat": "image", "text_feat": "text"}


def load_data(config: MGCNConfig) -> MMRecData:
    return load_mmrec(config.data, name=config.dataset)


def build_model(config: MGCNConfig, data: MMRecData) -> MGCN:
    """MGCN with its graphs: the normalised U-I adjacency and one cached kNN graph per modality."""
    norm_adj, user_item = user_item_graph(data.splits["train"])
    features = {MODALITIES[k]: torch.from_numpy(v) for k, v in data.features.items()}
    graphs = {m: cached_knn_graph(data.features[k], config.knn_k, config.cache_dir, f"{config.dataset}_{m}")
              for k, m in MODALITIES.items() if k in data.features}
    return MGCN(config, data.n_users, data.n_items, features, norm_adj, user_item, graphs).to(config.device)


def mgcn_loss(model: MGCN, config: MGCNConfig, cl_weight: float, users, positives, negatives) -> dict:
    """Eq. (19) on one batch; L_C runs over the batch's users and positive items (official code)."""
    final, fused, behaviour = model()
    u_final, i_final = model.split(final)
    u, p, n = u_final[users], i_final[positives], i_final[negatives]
    losses = {"bpr": bpr_loss(u, p, n), "reg": config.reg_weight * embedding_regulariser(u, p, n,
                                                                                        config.train_batch_size)}
    if config.use_self_supervision and cl_weight > 0:
        u_fused, i_fused = model.split(fused)
        u_id, i_id = model.split(behaviour)
        cl = info_nce(i_fused[positives], i_id[positives], config.temperature) + info_nce(
            u_fused[users], u_id[users], config.temperature)
        losses["cl"] = cl_weight * cl
    losses["total"] = sum(losses.values())
    return losses


@torch.inference_mode()
def evaluate(model: MGCN, data: MMRecData, split: str, config: MGCNConfig) -> dict[str, float]:
    """Full-ranking metrics of ``split`` (train items masked), one forward pass for all users."""
    model.eval()
    users, items = model.split(model()[0])
    result = evaluate_full_ranking(lambda u: users[u.to(users.device)] @ items.T,
                                   data.eval_batches(split, config.eval_batch_size), config.topk)
    model.train()
    return result


@dataclass
class Progress:
    """Early-stopping and selection state (MMRec ``early_stopping`` + ``best_test_upon_valid``)."""

    epoch: int = 0
    best_score: float = -1.0
    bad_epochs: int = 0
    best_epoch: int = -1
    best_valid: dict = field(default_factory=dict)
    best_test: dict = field(default_factory=dict)
    stopped: bool = False


class Trainer:
    """Trains one MGCN with one lambda_C in ``run_dir``; ``fit(resume=True)`` continues from last.pt."""

    def __init__(self, config: MGCNConfig, data: MMRecData, cl_weight: float, run_dir: Path,
                 max_epochs: int | None = None) -> None:
        self.config, self.data, self.cl_weight, self.run_dir = config, data, cl_weight, Path(run_dir)
        self.max_epochs = max_epochs  # stop after this many epochs in this call (tests, interruptions)
        set_seed(config.seed)
        self.model = build_model(config, data)
        # fused: the same Adam update in one kernel per tensor group (several times faster on CPU than the
        # default per-tensor loop; the 7050 x 4096 fine-tuned image features dominate the step)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate, fused=True)
        factor, period = config.learning_rate_scheduler
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda e: factor ** (e / period))
        self.sampler = BPRSampler(data.train_users, data.train_items, data.n_items,
                                  batch_size=config.train_batch_size, seed=config.seed)
        self.progress = Progress()

    # -- checkpoints -------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "sampler": self.sampler.state_dict(),
                "torch_rng": torch.get_rng_state(), "progress": self.progress.__dict__.copy(),
                "config": self.config.to_dict(), "cl_weight": self.cl_weight}

    def restore(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location=self.config.device, weights_only=False)
        except Exception as err:
            raise DataFormatError(path, f"unreadable checkpoint ({type(err).__name__})") from None
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
        self.progress = Progress(**state["progress"])
        metrics = self.run_dir / "metrics.jsonl"
        if metrics.is_file():  # drop lines of epochs after the checkpoint (a kill between the two writes)
            kept = [ln for ln in metrics.read_text().splitlines() if json.loads(ln)["epoch"] < self.progress.epoch]
            metrics.write_text("".join(ln + "\n" for ln in kept))

    # -- training ----------------------------------------------------------------------------------------
    def train_epoch(self) -> dict[str, float]:
        sums: dict[str, float] = {}
        batches = tqdm(self.sampler.epoch(), total=len(self.sampler), desc=f"epoch {self.progress.epoch}",
                       leave=False, disable=None)
        for users, pos, neg in batches:
            dev = self.config.device
            losses = mgcn_loss(self.model, self.config, self.cl_weight, users.to(dev), pos.to(dev), neg.to(dev))
            if not torch.isfinite(losses["total"]):
                raise FloatingPointError(f"non-finite loss at epoch {self.progress.epoch}")
            self.optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            self.optimizer.step()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
        return {k: v / len(self.sampler) for k, v in sums.items()}

    def fit(self, resume: bool = False) -> Progress:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        last = self.run_dir / "checkpoints" / "last.pt"
        if resume and last.is_file():
            self.restore(last)
            log.info("resumed %s at epoch %d", self.run_dir, self.progress.epoch)
        (self.run_dir / "config.yaml").write_text(yaml.safe_dump({**self.config.to_dict(),
                                                                   "cl_loss": self.cl_weight}, sort_keys=False))
        p, cfg, ran = self.progress, self.config, 0
        while not p.stopped and p.epoch < cfg.epochs and (self.max_epochs is None or ran < self.max_epochs):
            start = time.perf_counter()
            losses = self.train_epoch()
            self.scheduler.step()
            train_s = time.perf_counter() - start
            valid = evaluate(self.model, self.data, "valid", cfg)
            test = evaluate(self.model, self.data, "test", cfg)
            score = round(valid[cfg.valid_metric], 4)
            improved = score > p.best_score
            if improved:
                p.best_score, p.bad_epochs, p.best_epoch, p.best_valid, p.best_test = score, 0, p.epoch, valid, test
                atomic_save({"model": self.model.state_dict(), "config": cfg.to_dict(),
                             "cl_weight": self.cl_weight, "epoch": p.epoch}, self.run_dir / "checkpoints" / "best.pt")
            else:
                p.bad_epochs += 1
                p.stopped = p.bad_epochs > cfg.stopping_step
            line = {"epoch": p.epoch, "train_seconds": round(train_s, 3), "loss": losses,
                    "valid": valid, "test": test, "best": improved}
            with (self.run_dir / "metrics.jsonl").open("a") as f:
                f.write(json.dumps(line) + "\n")
            log.info("%sepoch %d  loss %.4f  valid %s %.4f  test %s %.4f%s  (%.1fs)",
                     "[SYNTHETIC] " if cfg.synthetic else "", p.epoch, losses["total"], cfg.valid_metric,
                     valid[cfg.valid_metric], cfg.valid_metric, test[cfg.valid_metric], "  *" if improved else "",
                     train_s)
            p.epoch += 1
            ran += 1
            atomic_save(self.state(), last)
        return p
