"""End to end on SYNTHETIC data: learning, exact resume, determinism, selection on valid."""

import json

import pytest
import torch

from common.metrics.ranking import popularity_baseline
from mvgcn.config import load_config
from mvgcn.experiment import run_experiment
from mvgcn.train import Trainer, load_data


def config_for(data_dir, tmp_path, **overrides):
    base = dict(data=str(data_dir), dataset=data_dir.name, cache_dir=str(tmp_path / "cache"),
                runs_dir=str(tmp_path / "runs"), synthetic=True)
    return load_config(None, **{**base, **overrides})


def test_smoke_training_beats_popularity_by_half_again(smoke_data, tmp_path):
    """The embedded default's model and data: valid Recall@20 >= 1.5x the popularity baseline."""
    config = config_for(smoke_data, tmp_path, cl_loss=0.01, train_batch_size=512, epochs=25)
    data = load_data(config)
    summary = run_experiment(config, data=data)
    got = summary["runs"][0]["valid"]["recall@20"]
    pop = popularity_baseline(data.item_popularity(), data.eval_batches("valid"), config.topk)["recall@20"]
    assert got >= 1.5 * pop, (got, pop)
    run_dir = tmp_path / "runs" / "smoke"
    assert (next(run_dir.glob("*/cl_loss=0.01/curves.png"))).stat().st_size > 0
    assert next(run_dir.glob("*/cl_loss=0.01/checkpoints/best.pt")).is_file()


def metrics_lines(run_dir):
    return [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_resume_after_kill_matches_uninterrupted_run(tiny_data, tmp_path):
    config = config_for(tiny_data, tmp_path, cl_loss=0.01, train_batch_size=256, epochs=6)
    data = load_data(config)
    Trainer(config, data, 0.01, tmp_path / "straight").fit()
    Trainer(config, data, 0.01, tmp_path / "killed", max_epochs=3).fit()  # "killed" after epoch 3
    (tmp_path / "killed" / "metrics.jsonl").open("a").write('{"epoch": 3, "partial": true}\n')  # died mid-write
    resumed = Trainer(config, data, 0.01, tmp_path / "killed").fit(resume=True)
    assert resumed.epoch == 6
    straight, killed = metrics_lines(tmp_path / "straight"), metrics_lines(tmp_path / "killed")
    assert [ln["epoch"] for ln in killed] == list(range(6))
    for a, b in zip(straight, killed):
        assert a["valid"] == b["valid"] and a["test"] == b["test"] and a["loss"] == b["loss"]
    s_state = torch.load(tmp_path / "straight" / "checkpoints" / "last.pt", weights_only=False)["trainer"]["model"]
    k_state = torch.load(tmp_path / "killed" / "checkpoints" / "last.pt", weights_only=False)["trainer"]["model"]
    assert all(torch.equal(s_state[k], k_state[k]) for k in s_state)


def test_same_seed_same_numbers(tiny_data, tmp_path):
    config = config_for(tiny_data, tmp_path, cl_loss=0.01, train_batch_size=256, epochs=2)
    data = load_data(config)
    a = Trainer(config, data, 0.01, tmp_path / "a").fit()
    b = Trainer(config, data, 0.01, tmp_path / "b").fit()
    assert a.best_valid == b.best_valid and a.best_test == b.best_test


def test_grid_is_selected_on_valid_not_test(tiny_data, tmp_path):
    config = config_for(tiny_data, tmp_path, cl_loss=[0.001, 0.1], train_batch_size=256, epochs=3)
    summary = run_experiment(config)
    best = max(summary["runs"], key=lambda r: round(r["valid"]["recall@20"], 4))
    assert summary["selected_cl_loss"] == best["cl_loss"]
    assert len(summary["runs"]) == 2
    assert (tmp_path / "runs" / "tiny").exists()


def test_early_stopping_stops_after_more_than_stopping_step_bad_epochs(tiny_data, tmp_path):
    config = config_for(tiny_data, tmp_path, cl_loss=0.01, train_batch_size=256, epochs=200, stopping_step=2,
                        learning_rate=0.05)
    progress = Trainer(config, load_data(config), 0.01, tmp_path / "es").fit()
    assert progress.stopped and progress.bad_epochs == 3
    assert progress.epoch == progress.best_epoch + 4
    lines = metrics_lines(tmp_path / "es")
    assert progress.best_valid == pytest.approx(lines[progress.best_epoch]["valid"])
