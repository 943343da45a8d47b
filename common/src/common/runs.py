"""Run plumbing every project shares: YAML config -> dataclass, atomic checkpoints, seeding, the
epoch loop with MMRec's early stopping and exact resume, learning curves, and the CLI error contract.

``load_config`` reads one YAML file into a dataclass; unknown keys (with a did-you-mean hint) and
values of the wrong type are one-line ``DataFormatError``s naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import os
import random
import sys
import time
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
import yaml

from common.errors import DataFormatError, WeightsNotFoundError
from common.io import atomic_save, truncate_metrics

log = logging.getLogger(__name__)
RANKING_METRICS = ("recall", "ndcg", "precision", "map")

C = TypeVar("C")


def _matches(value: Any, hint: Any) -> tuple[bool, Any]:
    """Whether ``value`` fits the annotation ``hint`` (ints may stand for floats); the coerced value."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            ok, coerced = _matches(value, arg)
            if ok:
                return True, coerced
        return False, value
    if hint is type(None):
        return value is None, value
    if origin is list:
        if not isinstance(value, list):
            return False, value
        coerced = [_matches(v, args[0]) if args else (True, v) for v in value]
        return all(ok for ok, _ in coerced), [v for _, v in coerced]
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint in (str, bool):
        return isinstance(value, hint), value
    return True, value


def load_config(cls: type[C], path: str | Path | None = None, **overrides: Any) -> C:
    """Defaults of ``cls``, then the YAML file, then ``overrides`` (CLI flags; None values ignored)."""
    values: dict[str, Any] = {}
    source: str | Path = "overrides"
    if path is not None:
        source = Path(path)
        if not source.is_file():
            raise DataFormatError(source, "config file not found")
        try:
            values = yaml.safe_load(source.read_text()) or {}
        except yaml.YAMLError as err:
            raise DataFormatError(source, f"invalid YAML ({str(err).splitlines()[0]})") from None
        if not isinstance(values, dict):
            raise DataFormatError(source, "expected a mapping of keys to values")
    values.update({k: v for k, v in overrides.items() if v is not None})
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key, value in values.items():
        if key not in known:
            hint = difflib.get_close_matches(key, known, n=1)
            raise DataFormatError(source, f"unknown key '{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""))
        ok, values[key] = _matches(value, hints[key])
        if not ok:
            raise DataFormatError(source, f"key '{key}' expects {hints[key]}, got {value!r}")
    config = cls(**values)
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate(source)
    return config


def save_config(config: Any, path: Path, **resolved: Any) -> None:
    """Write the resolved config (plus values fixed for this run, e.g. one point of a grid) as YAML."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({**dataclasses.asdict(config), **resolved}, sort_keys=False))


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


def check_valid_metric(metric: str, topk: list[int], source: str | Path) -> None:
    """``metric`` must read ``<recall|ndcg|precision|map>@<k>`` with k among ``topk``."""
    name, _, k = metric.partition("@")
    if name not in RANKING_METRICS or not k.isdigit() or int(k) not in topk:
        raise DataFormatError(source, f"valid_metric {metric!r} is not <metric>@<k> with k in topk {topk}")


def load_checkpoint(path: str | Path, kind: str, required: tuple[str, ...] = ("model", "config")) -> dict:
    """``torch.load`` of a checkpoint this repo wrote, with one-line errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises several types for a corrupt file
        raise DataFormatError(path, f"unreadable checkpoint ({type(err).__name__})") from None
    missing = [k for k in required if not isinstance(state, dict) or k not in state]
    if missing:
        raise DataFormatError(path, f"not a {kind} checkpoint (no {', '.join(missing)} entry)")
    return state


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


class EpochTrainer(Protocol):
    """What ``fit`` needs from a project's trainer."""

    def train_epoch(self) -> float | dict: ...
    def evaluate(self, split: str) -> dict: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...
    def best_checkpoint(self) -> dict: ...


def fit(trainer: EpochTrainer, run_dir: str | Path, *, epochs: int, stopping_step: int, valid_metric: str,
        resume: bool = False, max_epochs: int | None = None, label: str = "") -> Progress:
    """Train epoch by epoch: evaluate valid and test after each, stop early, checkpoint atomically.

    ``run_dir`` receives ``metrics.jsonl`` (one line per epoch), ``checkpoints/last.pt`` (the trainer's
    state plus the progress, after every epoch) and ``checkpoints/best.pt``. With ``resume`` the run
    continues from ``last.pt`` and ends where an uninterrupted run would. ``max_epochs`` bounds the
    epochs of this call (an interruption in tests).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    last, best, metrics = run_dir / "checkpoints" / "last.pt", run_dir / "checkpoints" / "best.pt", \
        run_dir / "metrics.jsonl"
    progress = Progress()
    if resume and last.is_file():
        state = load_checkpoint(last, "training", required=("trainer", "progress"))
        trainer.load_state_dict(state["trainer"])
        progress = Progress(**state["progress"])
        truncate_metrics(metrics, progress.epoch)
        log.info("resumed %s at epoch %d", run_dir, progress.epoch)
    elif metrics.is_file():
        metrics.unlink()
    ran = 0
    while not progress.stopped and progress.epoch < epochs and (max_epochs is None or ran < max_epochs):
        start = time.perf_counter()
        loss = trainer.train_epoch()
        train_s = time.perf_counter() - start
        valid, test = trainer.evaluate("valid"), trainer.evaluate("test")
        improved = progress.record(valid, test, valid_metric, stopping_step)
        if improved:
            atomic_save({**trainer.best_checkpoint(), "epoch": progress.epoch}, best)
        with metrics.open("a") as f:
            f.write(json.dumps({"epoch": progress.epoch, "train_seconds": round(train_s, 3), "loss": loss,
                                "valid": valid, "test": test, "best": improved}) + "\n")
        total = sum(loss.values()) if isinstance(loss, dict) else loss
        log.info("%sepoch %d  loss %.5f  valid %s %.4f  test %.4f%s  (%.1fs)", label, progress.epoch, total,
                 valid_metric, valid[valid_metric], test[valid_metric], "  *" if improved else "", train_s)
        progress.epoch += 1
        ran += 1
        atomic_save({"trainer": trainer.state_dict(), "progress": dataclasses.asdict(progress)}, last)
    return progress


def run_directory(runs_dir: str | Path, dataset: str, run_name: str | None, resume: bool) -> Path:
    """``runs_dir/<dataset>/<run_name>``; with ``resume`` and no name, the newest run of the dataset; else a
    new timestamped folder."""
    base = Path(runs_dir) / dataset
    if run_name:
        return base / run_name
    runs = sorted((p for p in base.glob("*") if p.is_dir()), key=lambda p: p.stat().st_mtime) if resume else []
    return runs[-1] if runs else base / time.strftime("%Y%m%d-%H%M%S")


def write_run_report(run_dir: Path, summary: dict, table: str) -> dict:
    """``run_dir/summary.json`` and ``run_dir/results.md``; returns the summary plus the printable table."""
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    (run_dir / "results.md").write_text(table + "\n")
    return {**summary, "table": table + f"\n\nrun directory: {run_dir}"}


def device_name(value: str) -> str:
    """``--device`` values: ``auto`` is CUDA when a GPU is present, else the CPU; any other name as given."""
    return ("cuda" if torch.cuda.is_available() else "cpu") if value == "auto" else value


def add_device_argument(parser: Any, default: str | None = "auto") -> None:
    """``--device`` (``auto`` by default: CUDA when present), as every command names it."""
    note = "the config's device" if default is None else default
    parser.add_argument("--device", default=default, type=device_name,
                        help=f"auto (CUDA when present), cpu, cuda, cuda:1, ... (default: {note})")


def add_run_arguments(parser: Any, example: str) -> None:
    """The flags every ``<paper> train`` shares; each overrides the config key of the same name."""
    parser.add_argument("--config", required=True, help=f"YAML config, e.g. {example}")
    parser.add_argument("--data", help="dataset folder (overrides the config's 'data')")
    parser.add_argument("--resume", action="store_true", help="continue the run from its checkpoints/last.pt")
    parser.add_argument("--run-name", help="run folder name under runs_dir/<dataset>/ (default: a timestamp)")
    parser.add_argument("--epochs", type=int, help="maximum epochs (overrides the config)")
    add_device_argument(parser, default=None)
    parser.add_argument("--runs-dir", help="root folder of run directories")


def add_bench_arguments(b: Any, n_batches: int, train_steps: int) -> None:
    """The ``bench`` flags of the GAN projects' CLIs (GALIP, DE-Net)."""
    add_device_argument(b)
    b.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8], help="batch sizes (default 1 8)")
    b.add_argument("--n-batches", type=int, default=n_batches, help="timed batches per size")
    b.add_argument("--train-batch", type=int, default=4, help="training batch (0 skips the training timing)")
    b.add_argument("--train-steps", type=int, default=train_steps, help="timed training steps")
    b.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")


def cli_logging() -> None:
    """Readable progress logs for the command-line entry points."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")


def run_cli(prog: str, command: Callable[[], None]) -> int:
    """Run a CLI command; bad input becomes one line on stderr and exit status 2, never a traceback."""
    try:
        command()
    except (DataFormatError, WeightsNotFoundError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    return 0


def load_weights(model: torch.nn.Module, weights: dict, checkpoint: Path, data: str) -> None:
    """``model.load_state_dict`` with a one-line error when the checkpoint does not fit the data."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:200]
        raise DataFormatError(checkpoint, f"does not fit the data in {data} ({detail})") from None


def reproduce_config(prog: str, data: str | None, configs: Path, synthetic_dir: Path,
                     load: Callable[..., Any], write_synthetic: Callable[[Path], Any]) -> Any:
    """The config ``make reproduce-<paper>`` runs: ``configs/<DATA name>.yaml`` on ``data``, or else the
    embedded default, ``configs/smoke.yaml`` on SYNTHETIC data written once into ``synthetic_dir``
    (into a scratch folder first, renamed when complete, so an interrupted write is never reused).
    """
    if data:
        name = Path(data).name
        return load(configs / f"{name}.yaml", data=data, dataset=name)
    print(f"{prog}: SYNTHETIC embedded default (common.synthetic data, random initialisation), not the paper's data")
    if not synthetic_dir.is_dir():
        scratch = synthetic_dir.with_name(f".{synthetic_dir.name}.partial{os.getpid()}")
        write_synthetic(scratch)
        os.replace(scratch, synthetic_dir)
    return load(configs / "smoke.yaml", data=str(synthetic_dir))
