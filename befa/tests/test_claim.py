"""BeFA's claim report on a tiny planted drift-and-omission dataset: mean ± sd rows for base and + BeFA."""

import csv

import pytest

from befa.claim import load_claim_config, run_claim, write_drift_data
from befa.reproduce import CONFIGS
from common.errors import DataFormatError

TINY = dict(n_users=150, n_items=90, image_dim=32, text_dim=16, drift_dims=4, drift_scale=3.0, omit_fraction=0.25)


def test_claim_report_gives_mean_sd_rows_for_base_and_befa_over_the_same_seeds(tmp_path):
    config = load_claim_config(CONFIGS / "drift.yaml", data=str(tmp_path / "data"), cache_dir=str(tmp_path / "c"),
                               runs_dir=str(tmp_path / "runs"), run_name="claim", models=["vbpr", "lattice"],
                               seeds=[1, 2, 3], drift_data=TINY, epochs=1, train_batch_size=512)
    config = write_drift_data(config)
    assert write_drift_data(config).data.startswith(config.data)  # written once, found again by its options
    result = run_claim(config)
    root = tmp_path / "runs" / "drift" / "claim"
    seeds = list(csv.DictReader((root / "claim_seeds.csv").open()))
    assert [(r["model"], r["variant"], r["seed"]) for r in seeds] == [
        (m, v, s) for m in ("vbpr", "lattice") for v in ("base", "BeFA") for s in ("1", "2", "3")]
    rows = list(csv.DictReader((root / "claim.csv").open()))
    assert [(r["model"], r["variant"], r["seeds"]) for r in rows] == [
        (m, v, "1 2 3") for m in ("vbpr", "lattice") for v in ("base", "BeFA", "BeFA - base")]
    for row in rows[:2]:
        values = [float(r["recall@20"]) for r in seeds if (r["model"], r["variant"]) == (row["model"], row["variant"])]
        assert float(row["recall@20 mean"]) == pytest.approx(sum(values) / 3)
        assert float(row["recall@20 sd"]) > 0  # the training seed changes the result; the data are fixed
    paired = [float(b["ndcg@20"]) - float(a["ndcg@20"]) for a, b in zip(seeds[:3], seeds[3:6])]
    assert float(rows[2]["ndcg@20 mean"]) == pytest.approx(sum(paired) / 3)
    assert result["table"].startswith("BeFA on drift") and "SYNTHETIC" in result["table"]
    assert "| vbpr | BeFA | " in result["table"] and " ± " in result["table"]


def test_claim_config_refuses_one_seed_and_unknown_data_options(tmp_path):
    with pytest.raises(DataFormatError, match="seeds"):
        load_claim_config(CONFIGS / "drift.yaml", seeds=[1])
    with pytest.raises(DataFormatError, match="drift_dim"):
        load_claim_config(CONFIGS / "drift.yaml", drift_data={"drift_dim": 3})
