"""The epoch loop of the ranking projects (MGCN, LD4MRec, BeFA, DualVGR): evaluate valid and test after every
epoch, MMRec's early stopping and best-valid selection, atomic checkpoints with an exact resume, and the curves."""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from common.checkpoints import read_checkpoint
from common.errors import NonFiniteLoss
from common.io import atomic_save, truncate_metrics

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """MMRec's early stopping (``utils.early_stopping``) and best-valid selection (``best_test_upon_valid``)."""

    epoch: int = 0
    best_score: float = -1.0
    bad_epochs: int = 0
    best_epoch: int = -1
    best_valid: dict = field(default_factory=dict)
    best_test: dict = field(default_factory=dict)
    stopped: bool = False

    def record(self, valid: dict, test: dict, metric: str, stopping_step: int) -> bool:
        """Account one evaluated epoch; True if it is the new best.

        The valid metric is rounded to 4 decimals first (MMRec's evaluator reports rounded values);
        training stops once the count of non-improving epochs exceeds ``stopping_step``.
        """
        score = round(valid[metric], 4)
        if score > self.best_score:
            self.best_score, self.bad_epochs, self.best_epoch = score, 0, self.epoch
            self.best_valid, self.best_test = valid, test
            return True
        self.bad_epochs += 1
        self.stopped = self.bad_epochs > stopping_step
        return False


def finite_step(terms: Mapping[str, object], epoch: int, step: int, skip: bool = False) -> bool:
    """True when every loss term (a number or a one-element tensor) is finite. Otherwise False with ``skip`` (the
    caller drops the update and counts it), else ``NonFiniteLoss`` naming the epoch, the step and the first bad term,
    raised before the update, so ``last.pt`` keeps the last finite state."""
    for name, value in terms.items():
        value = float(value.detach() if hasattr(value, "detach") else value)
        if not math.isfinite(value):
            if skip:
                return False
            raise NonFiniteLoss(f"loss term '{name}' is {value} at epoch {epoch}, step {step}: training stopped "
                                f"before that update (checkpoints/last.pt holds the last finite state; "
                                f"skip_nonfinite: true skips such steps instead)")
    return True


def finite_everywhere(terms: Mapping[str, object], epoch: int, step: int, skip: bool = False) -> bool:
    """``finite_step`` on loss terms (one-element tensors) summed over the processes of a DDP run (one all-reduce,
    so that every process stops or skips together; a NaN/inf on any one makes the sum non-finite on all)."""
    import torch

    values = torch.stack([torch.as_tensor(v).detach().reshape(()).double() for v in terms.values()])
    if torch.distributed.is_available() and torch.distributed.is_initialized() \
            and torch.distributed.get_world_size() > 1:
        torch.distributed.all_reduce(values)
    return finite_step(dict(zip(terms, values.tolist())), epoch, step, skip)


def log_skipped(skipped: int, epoch: int) -> None:
    if skipped:
        log.warning("epoch %d: %d step(s) with a non-finite loss skipped (skip_nonfinite)", epoch, skipped)


class EpochTrainer(Protocol):
    """What ``fit`` needs from a project's trainer. A trainer with long epochs gives ``train_epoch`` a ``save``
    parameter: ``fit`` passes a function that writes ``last.pt`` now, with the trainer's mid-epoch state."""

    def train_epoch(self) -> float | dict: ...
    def evaluate(self, split: str) -> dict: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...
    def best_checkpoint(self) -> dict: ...


def fit(trainer: EpochTrainer, run_dir: str | Path, *, epochs: int, stopping_step: int, valid_metric: str,
        resume: bool = False, max_epochs: int | None = None, label: str = "") -> Progress:
    """Train epoch by epoch: evaluate valid and test after each, stop early, checkpoint atomically.

    ``run_dir`` receives ``metrics.jsonl`` (one line per epoch), ``checkpoints/last.pt`` (the trainer's
    state plus the progress, after every epoch, and inside one when the trainer calls ``save``) and
    ``checkpoints/best.pt``. With ``resume`` the run
    continues from ``last.pt`` and ends where an uninterrupted run would. ``max_epochs`` bounds the
    epochs of this call (an interruption in tests).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    last, best, metrics = run_dir / "checkpoints" / "last.pt", run_dir / "checkpoints" / "best.pt", \
        run_dir / "metrics.jsonl"
    progress = Progress()
    if resume and last.is_file():
        state = read_checkpoint(last, "training", required=("trainer", "progress"))
        trainer.load_state_dict(state["trainer"])
        progress = Progress(**state["progress"])
        truncate_metrics(metrics, progress.epoch)
        log.info("resumed %s at epoch %d", run_dir, progress.epoch)
    elif metrics.is_file():
        metrics.unlink()
    takes_save = "save" in inspect.signature(trainer.train_epoch).parameters

    def save() -> None:
        atomic_save({"trainer": trainer.state_dict(), "progress": dataclasses.asdict(progress)}, last)

    ran = 0
    while not progress.stopped and progress.epoch < epochs and (max_epochs is None or ran < max_epochs):
        start = time.perf_counter()
        loss = trainer.train_epoch(save=save) if takes_save else trainer.train_epoch()
        train_s = time.perf_counter() - start
        valid, test = trainer.evaluate("valid"), trainer.evaluate("test")
        improved = progress.record(valid, test, valid_metric, stopping_step)
        if improved:
            atomic_save({**trainer.best_checkpoint(), "epoch": progress.epoch}, best)
        record = {"epoch": progress.epoch, "train_seconds": round(train_s, 3), "loss": loss, "valid": valid,
                  "test": test, "best": improved}
        try:
            line = json.dumps(record, allow_nan=False)  # strict JSON: never a bare NaN or Infinity
        except ValueError:
            raise NonFiniteLoss(f"epoch {progress.epoch} ended with a non-finite loss or metric ({record}); "
                                "training stopped (checkpoints/last.pt holds the last finite state)") from None
        with metrics.open("a") as f:
            f.write(line + "\n")
        total = sum(loss.values()) if isinstance(loss, dict) else loss
        log.info("%sepoch %d  loss %.5f  valid %s %.4f  test %.4f%s  (%.1fs)", label, progress.epoch, total,
                 valid_metric, valid[valid_metric], test[valid_metric], "  *" if improved else "", train_s)
        progress.epoch += 1
        ran += 1
        save()
    return progress


def plot_curves(run_dir: Path, metric: str, title: str) -> Path:
    """``run_dir/curves.png`` from ``metrics.jsonl``: training loss(es) and valid/test ``metric`` per epoch.

    Each line holds ``epoch``, ``loss`` (a number or a dict of named parts), ``valid``, ``test`` (metric
    dicts) and ``best`` (whether the valid metric improved); the last best epoch is marked.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [json.loads(ln) for ln in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    epochs = [ln["epoch"] for ln in lines]
    losses = {name: [ln["loss"][name] for ln in lines] for name in lines[0]["loss"]} \
        if isinstance(lines[0]["loss"], dict) else {"loss": [ln["loss"] for ln in lines]}
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, values in losses.items():
        ax_loss.plot(epochs, values, label=name)
    ax_loss.set(xlabel="epoch", ylabel="mean batch loss", yscale="log", title="training loss")
    ax_loss.legend()
    for split in ("valid", "test"):
        ax_metric.plot(epochs, [ln[split][metric] for ln in lines], label=split)
    best = [ln["epoch"] for ln in lines if ln["best"]]
    if best:
        ax_metric.axvline(best[-1], color="grey", linestyle=":", label=f"best valid (epoch {best[-1]})")
    ax_metric.set(xlabel="epoch", ylabel=metric, title=metric)
    ax_metric.legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out = Path(run_dir) / "curves.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
