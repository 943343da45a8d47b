"""The command-line contract every project shares: the same verbs and flags, ``--device auto``, readable logs,
bad input as one line and exit status 2, and the embedded default of ``<paper> reproduce``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.configs import device_name
from common.errors import DataFormatError, NonFiniteLoss, WeightsNotFoundError

VERBS = ("train", "eval", "bench", "reproduce")  # every CLI has these, in this order, before its own
RUN_FLAGS = ("--config", "--data", "--resume", "--run-name", "--epochs", "--device", "--runs-dir")


def command_parser(prog: str, description: str) -> tuple[argparse.ArgumentParser, Any]:
    """``<prog> --version`` and its sub-command group; a project adds ``VERBS`` first, in their order."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version(prog)
    except PackageNotFoundError:  # run from a source tree without installing
        installed = "not installed"
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"{prog} {installed}")
    return parser, parser.add_subparsers(dest="command", required=True)


def contract_violations(parser: argparse.ArgumentParser) -> list[str]:
    """What in a project's parser breaks the shared contract: ``--version``; ``VERBS`` first, in order; ``train``
    opening with ``RUN_FLAGS`` in order; ``--device`` defaulting to ``auto`` (or, in a command that reads a
    config, to the config's ``device``, itself ``auto`` unless the file says otherwise)."""
    options = {o for a in parser._actions for o in a.option_strings}
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    found = [] if "--version" in options else ["no --version"]
    if tuple(commands)[:len(VERBS)] != VERBS:
        found.append(f"commands start {tuple(commands)[:len(VERBS)]}, not {VERBS}")
    for name, command in commands.items():
        flags = [a.option_strings[-1] for a in command._actions
                 if a.option_strings and a.option_strings[-1] != "--help"]
        if name == "train" and tuple(flags[:len(RUN_FLAGS)]) != RUN_FLAGS:
            found.append(f"train flags start {flags[:len(RUN_FLAGS)]}, not {list(RUN_FLAGS)}")
        device = next((a.default for a in command._actions if "--device" in a.option_strings), "auto")
        takes_config = any("--config" in a.option_strings for a in command._actions)
        if device != "auto" and not (device is None and takes_config):  # None: the config's, itself auto
            found.append(f"{name} --device defaults to {device!r}")
    return found


def add_reproduce_command(sub: Any, prog: str, data_help: str) -> None:
    """``<prog> reproduce [--data DIR]`` (what ``make reproduce-<prog>`` runs): ``<prog>.reproduce.reproduce``."""
    r = sub.add_parser("reproduce", help="the embedded default (SYNTHETIC), or configs/<name>.yaml on --data: "
                                         "train, evaluate, report")
    r.add_argument("--data", help=data_help)

    def run(args: argparse.Namespace) -> None:
        from importlib import import_module

        import_module(f"{prog}.reproduce").reproduce(args.data)

    r.set_defaults(func=run)


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


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not i/N") from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"shard {text!r} needs 0 <= i < N")
    return index, count


def add_grid_arguments(parser: Any) -> None:
    """``--shard i/N`` and ``--merge`` of a ``<paper> grid`` command (``common.grid``)."""
    parser.add_argument("--shard", type=_shard, default=(0, 1),
                        help="i/N: train grid points i, i+N, i+2N, ... (0-based)")
    parser.add_argument("--merge", action="store_true", help="select on valid over every shard's results")


def add_bench_arguments(b: Any, n_batches: int, train_steps: int, train_batch: int = 4) -> None:
    """The ``bench`` flags of the GAN projects' CLIs (GALIP, DE-Net)."""
    add_device_argument(b)
    b.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8], help="batch sizes (default 1 8)")
    b.add_argument("--n-batches", type=int, default=n_batches, help="timed batches per size")
    b.add_argument("--train-batch", type=int, default=train_batch,
                   help=f"training batch (default {train_batch}; 0 skips the training timing)")
    b.add_argument("--train-steps", type=int, default=train_steps, help="timed training steps")
    b.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")


def cli_logging() -> None:
    """Readable progress logs for the command-line entry points."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")


def run_cli(prog: str, command: Callable[[], None]) -> int:
    """Run a CLI command; bad input (the projects' errors, and a file the system cannot open: missing, unreadable,
    a directory) and a loss that became NaN or infinite become one line on stderr and exit status 2, never a
    traceback."""
    try:
        command()
    except (DataFormatError, WeightsNotFoundError, NonFiniteLoss) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"{prog}: error: {os_error_line(err)}", file=sys.stderr)
        return 2
    return 0


def os_error_line(err: OSError) -> str:
    """'<file>: <reason>' (e.g. '/data/baby.inter: Permission denied'), or the error's own text without a file."""
    if err.filename is None:
        return " ".join(str(err).split())
    return f"{err.filename}: {err.strerror or type(err).__name__}"


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
