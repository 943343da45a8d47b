"""The reports around the model: one-step vs k-step inference, the ablations over seeds, the grid (CLI)."""

import json

import pytest
import torch
from test_cli import write_config

from ld4mrec.ablation import VARIANTS, run_ablation
from ld4mrec.cli import main
from ld4mrec.config import load_config
from ld4mrec.inference_report import compare_inference, inference_table, reverse_steps_rows
from ld4mrec.train import Trainer, evaluate, load_data


def config_for(data_dir, tmp_path, **overrides):
    base = dict(data=str(data_dir), dataset=data_dir.name, runs_dir=str(tmp_path / "runs"), synthetic=True,
                hidden=64, batch_size=64, learning_rate=1e-3)
    return load_config(None, **{**base, **overrides})


def test_k_step_rows_score_one_trained_model_on_the_same_users(tiny_data, tmp_path):
    """Every row ranks the same valid and test users with the same model: the one-step row is the model's own
    evaluation at reverse_steps 0, each k row its evaluation at k (DiffRec's T-step inference for k = T), and
    with t_in = 0 one reverse step is the one-step row."""
    config = config_for(tiny_data, tmp_path, steps=5)
    data = load_data(config)
    trainer = Trainer(config, data, tmp_path / "run")
    trainer.train_epoch()
    model = trainer.model
    assert reverse_steps_rows(5) == [0, 2, 5] and reverse_steps_rows(50) == [0, 2, 5, 50]
    rows = compare_inference(model, data, config, [0, 1, 2, 5], rounds=1)
    users = sum(len(batch[0]) for split in ("valid", "test") for batch in data.eval_batches(split, 2048))
    assert [r["reverse_steps"] for r in rows] == [0, 1, 2, 5] and {r["users"] for r in rows} == {users}
    for row in rows:
        for split in ("valid", "test"):
            assert row[split] == evaluate(model, data, split, config, reverse_steps=row["reverse_steps"])
        assert row["ms_per_1000_users"] > 0
    assert rows[1]["valid"] == rows[0]["valid"] and rows[1]["test"] == rows[0]["test"]
    scores = {k: model.predict(torch.arange(30), k) for k in (0, 5)}
    assert not torch.allclose(scores[0], scores[5])  # the rows do run different inferences
    table = inference_table(rows, config)
    assert table.startswith("One-step vs k-step inference") and "SYNTHETIC" in table
    assert "| one step (forward-free) |" in table and "| 5 reverse steps (= T) |" in table


def test_ablation_trains_every_variant_for_every_seed_and_resumes_from_results(tiny_data, tmp_path):
    config = config_for(tiny_data, tmp_path, epochs=2, run_name="abl")
    result = run_ablation(config, seeds=(1, 2))
    assert [(r["variant"], r["seed"]) for r in result["runs"]] == [(v[1], s) for v in VARIANTS for s in (1, 2)]
    for folder, _, changes in VARIANTS:
        run_config = (tmp_path / "runs" / "tiny" / "abl" / folder / "seed2" / "config.yaml").read_text()
        assert "seed: 2" in run_config and all(f"{k}: {str(v).lower()}" in run_config for k, v in changes.items())
    lines = result["table"].splitlines()
    assert "mean ± sd over seeds 1, 2" in lines[0] and len(lines) == 4 + len(VARIANTS)
    full = [r["recall@20"] for r in result["runs"] if r["variant"] == VARIANTS[0][1]]
    assert f"{sum(full) / 2:.4f} ± " in lines[4]
    again = run_ablation(config, seeds=(1, 2), resume=True)  # every point read back, nothing retrained
    assert again["runs"] == result["runs"]


def test_two_grid_shards_and_the_merge_select_what_train_selects_over_the_whole_grid(tiny_data, tmp_path, capsys):
    grid = "{learning_rate: [0.001, 0.01], soft_prob: [0.0, 0.3]}"
    config = write_config(tmp_path, tiny_data, grid=grid)
    assert main(["train", "--config", str(config), "--run-name", "whole"]) == 0
    whole = json.loads((tmp_path / "runs" / "tiny" / "whole" / "grid.json").read_text())
    assert "selected on valid" in capsys.readouterr().out
    for shard in ("0/2", "1/2"):
        assert main(["grid", "--config", str(config), "--run-name", "g", "--shard", shard]) == 0
    assert main(["grid", "--config", str(config), "--run-name", "g", "--merge"]) == 0
    out = capsys.readouterr().out
    merged = json.loads((tmp_path / "runs" / "tiny" / "g" / "grid.json").read_text())
    assert merged == whole and len(merged["runs"]) == 4
    assert "selected on valid" in out and "One-step vs k-step inference" in out
    summary = json.loads((tmp_path / "runs" / "tiny" / "g" / "summary.json").read_text())
    assert summary["point"] == whole["selected"]


def test_grid_merge_names_the_unfinished_point(tiny_data, tmp_path, capsys):
    config = write_config(tmp_path, tiny_data, grid="{learning_rate: [0.001, 0.01]}")
    assert main(["grid", "--config", str(config), "--run-name", "g", "--shard", "0/2"]) == 0
    capsys.readouterr()
    assert main(["grid", "--config", str(config), "--run-name", "g", "--merge"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "learning_rate=0.01" in err and "not finished" in err


@pytest.mark.parametrize("grid, fragment", [("{learning_rte: [1]}", "grid key 'learning_rte'"),
                                            ("{soft_prob: 0.2}", "grid key 'soft_prob'")])
def test_bad_grid_key_is_one_line(tiny_data, tmp_path, capsys, grid, fragment):
    assert main(["grid", "--config", str(write_config(tmp_path, tiny_data, grid=grid)), "--run-name", "g"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err


def test_eval_with_several_reverse_steps_prints_the_side_by_side_table(tiny_data, tmp_path, capsys):
    assert main(["train", "--config", str(write_config(tmp_path, tiny_data)), "--run-name", "r"]) == 0
    best = tmp_path / "runs" / "tiny" / "r" / "checkpoints" / "best.pt"
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(best), "--reverse-steps", "0", "2", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("One-step vs k-step inference") and "| 2 reverse steps |" in out
    assert main(["eval", "--checkpoint", str(best), "--reverse-steps", "0", "9"]) == 2
    assert "[0, 5]" in capsys.readouterr().err
