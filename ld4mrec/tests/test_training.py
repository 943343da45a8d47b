"""End to end on SYNTHETIC data: learning beats popularity, exact resume, determinism, early stopping."""

import json

import torch

from common.metrics.ranking import popularity_baseline
from ld4mrec.config import load_config
from ld4mrec.experiment import train_and_report
from ld4mrec.train import Trainer, load_data


def config_for(data_dir, tmp_path, **overrides):
    base = dict(data=str(data_dir), dataset=data_dir.name, runs_dir=str(tmp_path / "runs"), synthetic=True,
                hidden=200, batch_size=64, learning_rate=1e-3)
    return load_config(None, **{**base, **overrides})


def test_smoke_training_beats_popularity_by_half_again(smoke_data, tmp_path):
    config = config_for(smoke_data, tmp_path, epochs=60, stopping_step=20, run_name="smoke")
    result = train_and_report(config)
    data = load_data(config)
    pop = popularity_baseline(data.item_popularity(), data.eval_batches("valid"), config.topk)["recall@20"]
    assert result["valid"]["recall@20"] >= 1.5 * pop, (result["valid"]["recall@20"], pop)
    run_dir = tmp_path / "runs" / "smoke" / "smoke"
    assert (run_dir / "curves.png").stat().st_size > 0 and (run_dir / "checkpoints" / "best.pt").is_file()
    assert result["table"].startswith("LD4MRec on smoke — SYNTHETIC")


def lines(run_dir):
    return [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_resume_after_kill_matches_uninterrupted_run(tiny_data, tmp_path):
    config = config_for(tiny_data, tmp_path, epochs=6, steps=5)
    data = load_data(config)
    Trainer(config, data, tmp_path / "straight").fit()
    Trainer(config, data, tmp_path / "killed", max_epochs=2).fit()
    resumed = Trainer(config, data, tmp_path / "killed").fit(resume=True)
    assert resumed.epoch == 6
    a, b = lines(tmp_path / "straight"), lines(tmp_path / "killed")
    assert [ln["epoch"] for ln in b] == list(range(6))
    for x, y in zip(a, b):
        assert x["loss"] == y["loss"] and x["valid"] == y["valid"] and x["test"] == y["test"]
    sa = torch.load(tmp_path / "straight" / "checkpoints" / "last.pt", weights_only=False)["trainer"]
    sb = torch.load(tmp_path / "killed" / "checkpoints" / "last.pt", weights_only=False)["trainer"]
    assert all(torch.equal(sa["model"][k], sb["model"][k]) for k in sa["model"])
    assert torch.equal(sa["diffusion"]["loss_history"], sb["diffusion"]["loss_history"])


def test_same_seed_same_numbers(tiny_data, tmp_path):
    config = config_for(tiny_data, tmp_path, epochs=2)
    data = load_data(config)
    a = Trainer(config, data, tmp_path / "a").fit()
    b = Trainer(config, data, tmp_path / "b").fit()
    assert a.best_valid == b.best_valid and a.best_test == b.best_test


def test_early_stopping_counts_non_improving_epochs(tiny_data, tmp_path):
    config = config_for(tiny_data, tmp_path, epochs=300, stopping_step=2, learning_rate=0.05)
    p = Trainer(config, load_data(config), tmp_path / "es").fit()
    assert p.stopped and p.bad_epochs == 3 and p.epoch == p.best_epoch + 4
