"""Run plumbing every project shares: YAML config -> dataclass, atomic checkpoints, seeding, curves.

``load_config`` reads one YAML file into a dataclass; unknown keys (with a did-you-mean hint) and
values of the wrong type are one-line ``DataFormatError``s naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import random
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import yaml

from common.errors import DataFormatError

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


def save_config(config: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file in the same folder, then rename: a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


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
