"""Typed YAML configs: one YAML file read into a dataclass, and the resolved config written back.

``load_config`` reads defaults, then the file, then CLI overrides; unknown keys (with a did-you-mean hint) and
values of the wrong type are one-line ``DataFormatError``s naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import torch
import yaml

from common.errors import DataFormatError

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
    """Defaults of ``cls``, then the YAML file, then ``overrides`` (CLI flags; None values ignored); ``device: auto``
    is resolved (CUDA when present)."""
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
    if getattr(config, "device", None) == "auto":
        config.device = device_name("auto")
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate(source)
    return config


def device_name(value: str) -> str:
    """``--device`` and ``device:`` values: ``auto`` is CUDA when a GPU is present, else the CPU; others as given."""
    return ("cuda" if torch.cuda.is_available() else "cpu") if value == "auto" else value


def auto_device() -> str:
    """The value of ``device: auto``: the default ``device`` of every project's config."""
    return device_name("auto")


def save_config(config: Any, path: Path, **resolved: Any) -> None:
    """Write the resolved config (plus values fixed for this run, e.g. one point of a grid) as YAML."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({**dataclasses.asdict(config), **resolved}, sort_keys=False))


def check_valid_metric(metric: str, topk: list[int], source: str | Path) -> None:
    """``metric`` must read ``<recall|ndcg|precision|map>@<k>`` with k among ``topk``."""
    name, _, k = metric.partition("@")
    if name not in RANKING_METRICS or not k.isdigit() or int(k) not in topk:
        raise DataFormatError(source, f"valid_metric {metric!r} is not <metric>@<k> with k in topk {topk}")
