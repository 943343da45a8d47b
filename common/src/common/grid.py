"""A hyper-parameter grid searched on VALID: every point trains in its own run folder, resumable and shardable.

A grid is a config's ``{key: [values]}``; its points are the cartesian product, each trained in
``root/<key=value,...>/`` by the paper's own ``train_point(point, run_dir, resume)``, which leaves the point's
result (``valid`` and ``test`` metrics at its best valid epoch) in ``result.json``. The selected point is the one
with the best valid metric, rounded to 4 decimals as MMRec rounds it (the first such point on ties).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from common.errors import DataFormatError

RESULT = "result.json"


def check_grid(grid: dict, fields: Iterable[str], source: str | Path) -> None:
    """One line naming the first grid key that is not a config field or has no list of values."""
    fields = set(fields)
    for key, values in grid.items():
        if key not in fields or not isinstance(values, list) or not values:
            raise DataFormatError(source, f"grid key {key!r} must be a hyper-parameter with a list of values")


def grid_points(grid: dict) -> list[dict]:
    """The cartesian product of ``grid``, the last key varying fastest (one empty point when there is no grid)."""
    points = [{}]
    for key, values in grid.items():
        points = [{**p, key: v} for p in points for v in values]
    return points


def point_name(point: dict) -> str:
    """A grid point's run folder name, e.g. ``learning_rate=0.001,layer_times=2``."""
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in point.items())


def point_dir(root: Path, point: dict) -> Path:
    return root / point_name(point) if point else root


def write_result(run_dir: Path, result: dict) -> None:
    """A finished point's ``result.json`` (what ``--resume`` and the merge read back)."""
    (run_dir / RESULT).write_text(json.dumps(result, indent=1))


def select(results: list[dict], root: Path, valid_metric: str) -> dict:
    """The best result by valid metric; ``root/grid.json`` (the selected point and every run) when there was a
    grid."""
    best = max(results, key=lambda r: round(r["valid"][valid_metric], 4))
    if len(results) > 1:
        (root / "grid.json").write_text(json.dumps({"selected": best["point"], "runs": results}, indent=1))
    return best


def run_grid(grid: dict, root: Path, train_point: Callable[[dict, Path, bool], dict], valid_metric: str,
             resume: bool = False, shard: tuple[int, int] = (0, 1)) -> dict | None:
    """Train every point of ``grid`` and return the selected result (with its ``point``).

    ``shard=(i, n)`` trains only points i, i + n, i + 2n, ... (one process per GPU, a SLURM array or several
    machines over a shared folder) and returns None; ``merge_grid`` then selects over every shard's results. With
    ``resume`` a finished point is read back and an interrupted one continues from its ``checkpoints/last.pt``.
    """
    index, count = shard
    results = []
    for point in grid_points(grid)[index::count]:
        run_dir = point_dir(root, point)
        if resume and (run_dir / RESULT).is_file():
            result = json.loads((run_dir / RESULT).read_text())
        else:
            result = train_point(point, run_dir, resume and (run_dir / "checkpoints" / "last.pt").is_file())
        results.append({**result, "point": point})
    return select(results, root, valid_metric) if count == 1 else None


def merge_grid(grid: dict, root: Path, valid_metric: str) -> dict:
    """Select over the results every shard of ``run_grid`` wrote; one line naming a point that has not finished."""
    results = []
    for point in grid_points(grid):
        path = point_dir(root, point) / RESULT
        if not path.is_file():
            raise DataFormatError(path, "missing: this grid point has not finished (run its shard, --resume)")
        results.append({**json.loads(path.read_text()), "point": point})
    return select(results, root, valid_metric)
