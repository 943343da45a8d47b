"""common.grid: points, shards, resume, the merge and selection on the valid metric (rounded as MMRec)."""

import json

import pytest

from common.cli import add_grid_arguments
from common.errors import DataFormatError
from common.grid import check_grid, grid_points, merge_grid, point_name, run_grid, write_result

GRID = {"learning_rate": [0.001, 0.01], "layers": [1, 2]}


def score(point: dict) -> float:
    """A planted valid metric: best at learning_rate 0.01, layers 1; ties within 4 decimals below it."""
    return {(0.001, 1): 0.2, (0.001, 2): 0.3, (0.01, 1): 0.51, (0.01, 2): 0.50996}[
        (point["learning_rate"], point["layers"])]


def trainer(log: list):
    def train_point(point, run_dir, resume):
        log.append((point_name(point), resume))
        run_dir.mkdir(parents=True, exist_ok=True)
        result = {"valid": {"recall@20": score(point)}, "test": {"recall@20": -score(point)}}
        write_result(run_dir, result)
        return result
    return train_point


def test_points_are_the_cartesian_product_named_key_value():
    assert grid_points({}) == [{}]
    assert [point_name(p) for p in grid_points(GRID)] == [
        "learning_rate=0.001,layers=1", "learning_rate=0.001,layers=2", "learning_rate=0.01,layers=1",
        "learning_rate=0.01,layers=2"]


def test_shards_partition_the_points_and_the_merge_selects_what_one_run_selects(tmp_path):
    log = []
    whole = run_grid(GRID, tmp_path / "whole", trainer(log), "recall@20")
    assert whole["point"] == {"learning_rate": 0.01, "layers": 1}  # 0.50996 rounds to 0.5100: the first wins
    assert run_grid(GRID, tmp_path / "sharded", trainer(log), "recall@20", shard=(1, 3)) is None
    assert run_grid(GRID, tmp_path / "sharded", trainer(log), "recall@20", shard=(0, 3)) is None
    with pytest.raises(DataFormatError, match="learning_rate=0.01,layers=1"):
        merge_grid(GRID, tmp_path / "sharded", "recall@20")
    run_grid(GRID, tmp_path / "sharded", trainer(log), "recall@20", shard=(2, 3))
    assert [name for name, _ in log[4:]] == ["learning_rate=0.001,layers=2", "learning_rate=0.001,layers=1",
                                              "learning_rate=0.01,layers=2", "learning_rate=0.01,layers=1"]
    merged = merge_grid(GRID, tmp_path / "sharded", "recall@20")
    assert merged == whole
    assert (json.loads((tmp_path / "sharded" / "grid.json").read_text())
            == json.loads((tmp_path / "whole" / "grid.json").read_text()))


def test_resume_reads_finished_points_and_continues_only_interrupted_ones(tmp_path):
    log = []
    run_grid(GRID, tmp_path, trainer(log), "recall@20")
    (tmp_path / "learning_rate=0.01,layers=2" / "result.json").unlink()  # interrupted after its checkpoint
    (tmp_path / "learning_rate=0.01,layers=2" / "checkpoints").mkdir()
    (tmp_path / "learning_rate=0.01,layers=2" / "checkpoints" / "last.pt").write_bytes(b"")
    log.clear()
    run_grid(GRID, tmp_path, trainer(log), "recall@20", resume=True)
    assert log == [("learning_rate=0.01,layers=2", True)]


def test_no_grid_trains_the_config_itself_in_the_root(tmp_path):
    best = run_grid({}, tmp_path, lambda p, d, r: {"valid": {"m": 1.0}, "point_dir": str(d)}, "m")
    assert best["point"] == {} and best["point_dir"] == str(tmp_path) and not (tmp_path / "grid.json").exists()


@pytest.mark.parametrize("grid, key", [({"lr": [1]}, "lr"), ({"learning_rate": 0.1}, "learning_rate"),
                                       ({"learning_rate": []}, "learning_rate")])
def test_bad_grid_key_is_one_line_naming_it(grid, key):
    with pytest.raises(DataFormatError, match=f"grid key '{key}'"):
        check_grid(grid, {"learning_rate", "layers"}, "c.yaml")


def test_shard_flag_parses_i_of_n_and_refuses_the_rest():
    import argparse

    parser = argparse.ArgumentParser()
    add_grid_arguments(parser)
    assert parser.parse_args(["--shard", "1/3"]).shard == (1, 3)
    assert parser.parse_args([]).shard == (0, 1) and not parser.parse_args([]).merge
    for bad in ("3/3", "x", "1/0"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--shard", bad])
