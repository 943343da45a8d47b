"""``dualvgr train``: the official training recipe (``train.py``), single process or ``torchrun`` DDP.

Each epoch visits the train questions in a seeded random order (seed + epoch, so a resumed run sees the same
order), in batches of ``batch_size`` (split evenly over DDP ranks; the global batch stays ``batch_size``).
Loss: ``losses.dualvgr_loss``; Adam, lr halved after the milestone epochs, gradient-norm clip 12. After every
epoch ``common.fit.fit`` evaluates val and test, keeps ``checkpoints/best.pt`` on val overall accuracy (the
official selection) and ``checkpoints/last.pt`` for an exact resume; test is reported at the best val epoch.

Fixed against the official code (spec B6): ``unit_layers`` is honoured (the official training always built
2 units); any device (no hard-coded ``cuda:1``); SVQA categories are passed through as ints; the epoch loss is
the mean over this epoch's batches (the official loss loop reused the batch index ``i``); a trailing batch of
one question is dropped in training (BatchNorm cannot train on one sample; the official run crashed there).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from common import distributed
from common.checkpoints import load_weights, read_checkpoint
from common.configs import save_config
from common.data.videoqa import VideoQADataset, check_features, load_videoqa
from common.distributed import Dist
from common.errors import DataFormatError
from common.fit import Progress, finite_everywhere, fit, log_skipped, plot_curves
from common.metrics.videoqa import videoqa_accuracy
from common.reports import write_run_report
from common.rng import rng_state, set_rng_state, set_seed
from common.run_folder import check_run_directory, run_directory
from dualvgr.config import DualVGRConfig
from dualvgr.losses import dualvgr_loss
from dualvgr.model import DualVGR
from dualvgr.official import official_state, to_ours
from dualvgr.report import majority_baseline, results_table

log = logging.getLogger(__name__)
SPLIT_FILES = {"train": "train", "valid": "val", "test": "test"}
INPUTS = ("appearance", "motion", "question", "question_len")


def load_split(config: DualVGRConfig, split: str) -> VideoQADataset:
    """``split`` ('train', 'valid' or 'test') of the config's dataset in ``common.data.videoqa``'s files."""
    return load_videoqa(config.data, config.dataset, SPLIT_FILES[split], num_clips=config.num_clips,
                        feature_dim=config.vision_dim, in_memory=config.in_memory)


def build_model(config: DualVGRConfig, vocab: dict) -> DualVGR:
    return DualVGR(len(vocab["question_token_to_idx"]), len(vocab["answer_token_to_idx"]), config.unit_layers,
                   config.vision_dim, config.module_dim, config.word_dim)


def set_glove(model: DualVGR, train_set: VideoQADataset, config: DualVGRConfig) -> None:
    """Copy the train pickle's GloVe matrix into the word embedding (official ``train.py`` with ``glove``)."""
    path = train_set.files.questions
    if train_set.glove is None:
        raise DataFormatError(path, "glove is None; prepare-questions with --glove, or set 'glove: false'")
    if train_set.glove.shape[1] != config.word_dim:
        raise DataFormatError(path, f"glove vectors are {train_set.glove.shape[1]}-d but word_dim is {config.word_dim}")
    with torch.no_grad():
        model.question_encoder.embed.weight.copy_(torch.from_numpy(train_set.glove))


def initial_weights(path: Path, model: DualVGR, vocab: dict) -> dict:
    """The weights ``train --init-from`` starts from: an official checkpoint's, strictly mapped onto ``model``, or
    the ``model`` entry of one of ours (``best.pt``, ``dualvgr convert``'s output), trained on the same vocabulary."""
    checkpoint = read_checkpoint(path, "DualVGR")
    official = official_state(checkpoint)
    if official is not None:
        return to_ours(official, model, path)
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise DataFormatError(path, "neither a DualVGR checkpoint (no model entry) nor an official one")
    if checkpoint.get("vocab", vocab) != vocab:
        raise DataFormatError(path, "vocabulary differs from the train split's")
    return checkpoint["model"]


def epoch_batches(n: int, batch_size: int, seed: int, where: Dist) -> list[list[int]]:
    """This rank's batches of a seeded permutation of range(n); ranks get equally many questions (the
    permutation is padded by wrapping round, as ``DistributedSampler``); a trailing batch of one is dropped."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    total = -(-n // where.world_size) * where.world_size
    order = torch.cat([order, order[: total - n]])[where.rank::where.world_size].tolist()
    per_rank = max(1, batch_size // where.world_size)
    batches = [order[i:i + per_rank] for i in range(0, len(order), per_rank)]
    return batches[:-1] if len(batches) > 1 and len(batches[-1]) == 1 else batches


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


class Trainer:
    """The ``common.fit.EpochTrainer`` of DualVGR."""

    def __init__(self, config: DualVGRConfig, where: Dist, init_from: Path | None = None):
        self.config, self.where = config, where
        set_seed(config.seed)
        self.train_set = load_split(config, "train")
        self.eval_sets = {s: load_split(config, s) for s in ("valid", "test")}
        for s, ds in self.eval_sets.items():
            if ds.vocab != self.train_set.vocab:
                raise DataFormatError(ds.files.vocab, f"the {s} split's vocabulary differs from train's")
        self.model = build_model(config, self.train_set.vocab).to(where.device)
        if config.glove:
            set_glove(self.model, self.train_set, config)
        if init_from is not None:
            load_weights(self.model, initial_weights(init_from, self.model, self.train_set.vocab), init_from,
                         config.data)
            log.info("weights from %s", init_from)
        self.net = DistributedDataParallel(self.model) if where.world_size > 1 else self.model
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, fused=True)
        self.epoch, self.step_in_epoch, self.loss_sums = 0, 0, {"ce": 0.0, "alpha_consistency": 0.0, "beta_hsic": 0.0}
        self.rng_in_epoch: dict | None = None

    def _loader(self, dataset: VideoQADataset, batches: list[list[int]]) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=self.config.num_workers,
                                           pin_memory=self.where.device.type == "cuda",
                                           persistent_workers=False)

    def train_epoch(self, save: Callable[[], None] | None = None) -> dict[str, float]:
        """One epoch; the mean over its batches of CE and of the weighted consistency and HSIC terms. Every
        ``save_every_steps`` batches it calls ``save`` (``common.fit``'s writer of ``last.pt``); a trainer loaded
        from such a checkpoint continues with the epoch's next batch."""
        config = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = config.lr_at(self.epoch)
        batches = epoch_batches(len(self.train_set), config.batch_size, config.seed + self.epoch, self.where)
        done, sums, skipped = self.step_in_epoch, dict(self.loss_sums), 0
        self.net.train()
        loader = iter(self._loader(self.train_set, batches[done:]))  # draws its base seed from the global RNG
        if self.rng_in_epoch is not None:  # resumed mid-epoch: the RNG as it was after that batch, past the draw
            set_rng_state(self.rng_in_epoch)
            self.rng_in_epoch = None
        bar = tqdm(loader, desc=f"{config.tag()}epoch {self.epoch}", unit="batch", initial=done, total=len(batches),
                   leave=False, mininterval=2.0, disable=not self.where.is_main)
        for i, batch in enumerate(bar, start=done + 1):
            batch = to_device(batch, self.where.device)
            logits, trace = self.net(*(batch[k] for k in INPUTS))
            loss, parts = dualvgr_loss(logits, batch["answer"], trace, config.alpha, config.beta)
            if not finite_everywhere({"ce": parts["ce"], "consistency": parts["consistency"], "hsic": parts["hsic"]},
                               self.epoch, i - 1, config.skip_nonfinite):
                skipped += 1
                continue
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
            self.optimizer.step()
            for key, value in (("ce", parts["ce"]), ("alpha_consistency", config.alpha * parts["consistency"]),
                               ("beta_hsic", config.beta * parts["hsic"])):
                sums[key] += value
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if save is not None and config.save_every_steps and i % config.save_every_steps == 0 and i < len(batches):
                self.step_in_epoch, self.loss_sums = i, sums
                save()  # each rank its own last.pt (rank 0 in the run folder, others in .rank<r>/)
        if self.where.world_size > 1:  # BatchNorm running stats: rank 0's everywhere, so eval and checkpoints agree
            for buffer in self.model.buffers():
                torch.distributed.broadcast(buffer, src=0)
        log_skipped(skipped, self.epoch)
        self.epoch, self.step_in_epoch, self.loss_sums = self.epoch + 1, 0, {k: 0.0 for k in sums}
        return distributed.mean_across({k: v / max(1, len(batches) - skipped) for k, v in sums.items()},
                                       self.where.device)

    @torch.inference_mode()
    def predict(self, dataset: VideoQADataset) -> torch.Tensor:
        """Predicted answer index of every question of ``dataset`` (ranks share the work; all get the result)."""
        self.model.eval()
        mine = list(range(self.where.rank, len(dataset), self.where.world_size))
        size = self.config.eval_batch_size
        preds = [self.model(*(b[k] for k in INPUTS))[0].argmax(dim=1)
                 for b in (to_device(b, self.where.device) for b in
                           self._loader(dataset, [mine[i:i + size] for i in range(0, len(mine), size)]))]
        self.model.train()
        width = -(-len(dataset) // self.where.world_size)
        index = torch.full((width,), -1, dtype=torch.long, device=self.where.device)
        pred = torch.zeros(width, dtype=torch.long, device=self.where.device)
        index[: len(mine)] = torch.tensor(mine, dtype=torch.long, device=self.where.device)
        if preds:
            pred[: len(mine)] = torch.cat(preds)
        index, pred = distributed.gather_cat(index), distributed.gather_cat(pred)
        out = torch.empty(len(dataset), dtype=torch.long, device=self.where.device)
        out[index[index >= 0]] = pred[index >= 0]
        return out.cpu()

    def evaluate(self, split: str) -> dict[str, float]:
        """Overall and per-question-type accuracy (``common.metrics.videoqa``) of 'valid' or 'test'."""
        dataset = self.eval_sets[split]
        return videoqa_accuracy(self.predict(dataset), torch.from_numpy(dataset.answers),
                                torch.from_numpy(dataset.question_types), dataset.type_names)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "epoch": self.epoch,
                "step_in_epoch": self.step_in_epoch, "loss_sums": dict(self.loss_sums), "rng": rng_state()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.step_in_epoch, self.loss_sums = state["epoch"], state["step_in_epoch"], state["loss_sums"]
        if self.step_in_epoch:  # restored by train_epoch, once its data loader has drawn its seed
            self.rng_in_epoch = state["rng"]
        else:
            set_rng_state(state["rng"])

    def best_checkpoint(self) -> dict:
        return {"model": self.model.state_dict(), "config": self.config.to_dict(), "vocab": self.train_set.vocab}


def train(config: DualVGRConfig, resume: bool = False, max_epochs: int | None = None,
          init_from: str | Path | None = None, check_data: bool = True) -> dict:
    """Train (joining a ``torchrun`` process group when there is one) and return the summary (rank 0 writes
    ``summary.json``, ``results.md`` and ``curves.png``; other ranks keep their resume state in ``.rank<r>/``).
    ``init_from``: a new run starts from that checkpoint's weights (``initial_weights``) with a fresh optimiser at
    epoch 0; it cannot be combined with ``resume`` (a resumed run's weights are in its ``last.pt``). Streamed features
    (``in_memory: false``) are read through once before the run folder is written (``check_features``; loaded ones
    are checked as they load); ``check_data=False`` (``--skip-data-check``) skips that pass."""
    if init_from is not None and resume:
        raise DataFormatError(Path(init_from), "--init-from starts a new run from a checkpoint's weights; --resume "
                                               "continues a run of ours: give one of them")
    where = distributed.setup(config.device)
    try:
        if not where.is_main:
            logging.getLogger().setLevel(logging.WARNING)
        run_dir = run_directory(config, resume)
        check_run_directory(run_dir, resume)
        trainer = Trainer(config, where, None if init_from is None else Path(init_from))
        if check_data and not config.in_memory:
            check_features(trainer.train_set.files, progress=where.is_main)
        if where.is_main:
            save_config(config, run_dir / "config.yaml", world_size=where.world_size)
        progress = fit(trainer, run_dir if where.is_main else run_dir / f".rank{where.rank}", epochs=config.epochs,
                       stopping_step=config.stopping_step, valid_metric="overall", resume=resume,
                       max_epochs=max_epochs, label=config.tag())
        return report(config, trainer, progress, run_dir) if where.is_main else {}
    finally:
        distributed.teardown()


def report(config: DualVGRConfig, trainer: Trainer, progress: Progress, run_dir: Path) -> dict:
    test = trainer.eval_sets["test"]
    baseline = majority_baseline(trainer.train_set.answers, test)
    rows = [("val (best epoch)", progress.best_valid), ("test at best val", progress.best_test),
            ("majority answer (test)", baseline)]
    table = results_table(config, f"best val epoch {progress.best_epoch}", rows, test.type_names)
    plot_curves(run_dir, "overall", f"{config.tag()}DualVGR on {config.dataset}")
    summary = {"synthetic": config.synthetic, "dataset": config.dataset, "best_epoch": progress.best_epoch,
               "epochs_run": progress.epoch, "valid": progress.best_valid, "test": progress.best_test,
               "majority_baseline_test": baseline, "run_dir": str(run_dir)}
    return write_run_report(run_dir, summary, table)
