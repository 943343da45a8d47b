"""Training: learning on the embedded default, exact resume, determinism, the B6 fixes and one-line errors."""

import json
import os

import numpy as np
import pytest
import torch
import yaml

from common.data.videoqa import SVQA_CATEGORIES
from common.distributed import Dist
from common.errors import DataFormatError
from common.resume_check import records
from dualvgr import cli
from dualvgr import train as train_module
from dualvgr.reproduce import config_for, reproduce
from dualvgr.train import epoch_batches, train
from dualvgr.validate import validate

CPU1 = Dist(0, 1, torch.device("cpu"))


def test_embedded_default_learns(tmp_path, monkeypatch, capsys):
    """`make reproduce-dualvgr`'s run: test accuracy >= 2x the majority answer (asserted), per-type table printed."""
    monkeypatch.chdir(tmp_path)
    result = reproduce(None)
    out = capsys.readouterr().out
    assert "| test at best val |" in out and "what | who | how | when | where" in out and "SYNTHETIC" in out
    test, majority = result["test"]["overall"], result["majority_baseline_test"]["overall"]
    assert test >= 2 * majority and test >= 0.5, (test, majority)


def test_reproduce_picks_the_config_by_folder_name(tmp_path):
    config = config_for(str(tmp_path / "msrvtt-qa"))
    assert (config.dataset, config.num_clips, config.data) == ("msrvtt-qa", 16, str(tmp_path / "msrvtt-qa"))
    assert config_for(str(tmp_path / "svqa")).num_clips == 20
    with pytest.raises(DataFormatError, match="no config tgif_qa.yaml"):
        config_for(str(tmp_path / "tgif_qa"))


def _weights(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)["trainer"]["model"]


def test_resume_is_exact_and_runs_are_deterministic(config, tmp_path):
    full = train(config(epochs=3, run_name="full"))
    first = train(config(epochs=3, run_name="cut"), max_epochs=1)
    assert first["epochs_run"] == 1
    resumed = train(config(epochs=3, run_name="cut"), resume=True)
    again = train(config(epochs=3, run_name="again"))
    runs = tmp_path / "runs" / "msvd-qa"
    ref = _weights(runs / "full")
    for name in ("cut", "again"):
        assert all(torch.equal(ref[k], v) for k, v in _weights(runs / name).items()), name
    assert resumed["test"] == full["test"] == again["test"]
    lines = [json.loads(x) for x in (runs / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [0, 1, 2]


def test_resume_inside_an_epoch_is_exact(config, tmp_path, monkeypatch):
    """last.pt every 3 batches (save_every_steps): a run that dies at epoch 1's 5th batch resumes from its 3rd
    and ends with the weights and records of the uninterrupted run."""
    full = train(config(epochs=2, run_name="full", save_every_steps=3))
    real, calls = train_module.dualvgr_loss, []
    per_epoch = len(epoch_batches(len(train_module.load_split(config(), "train")), 16, 0, CPU1))

    def dies(*args):
        calls.append(1)
        if len(calls) == per_epoch + 5:
            raise KeyboardInterrupt("killed")
        return real(*args)

    monkeypatch.setattr(train_module, "dualvgr_loss", dies)
    with pytest.raises(KeyboardInterrupt):
        train(config(epochs=2, run_name="cut", save_every_steps=3))
    monkeypatch.setattr(train_module, "dualvgr_loss", real)
    runs = tmp_path / "runs" / "msvd-qa"
    state = torch.load(runs / "cut" / "checkpoints" / "last.pt", weights_only=False)
    assert (state["trainer"]["epoch"], state["trainer"]["step_in_epoch"]) == (1, 3)
    resumed = train(config(epochs=2, run_name="cut", save_every_steps=3), resume=True)
    ref = _weights(runs / "full")
    assert all(torch.equal(ref[k], v) for k, v in _weights(runs / "cut").items())
    assert resumed["test"] == full["test"] and records(runs / "full") == records(runs / "cut")


def test_unit_layers_is_honoured_and_validate_rebuilds_from_the_checkpoint(config, tmp_path):
    """B6.1: the official train.py ignored --unit_layers and validate.py needed it repeated; here both follow it."""
    result = train(config(epochs=1, unit_layers=3))
    best = tmp_path / "runs" / "msvd-qa" / "run" / "checkpoints" / "best.pt"
    state = torch.load(best, weights_only=False)
    assert sum(k.startswith("units.2.") for k in state["model"]) > 0 and not any(k.startswith("units.3.")
                                                                                 for k in state["model"])
    assert validate(best, split="test")["accuracy"] == result["test"]


def test_svqa_categories_are_ints_passed_through(config, tiny_svqa):
    """B6.4: SVQA categories reach the per-type table by their index (the official loader raised KeyError)."""
    result = train(config(dataset="svqa", data=str(tiny_svqa), epochs=1))
    assert set(result["test"]) - {"overall"} <= set(SVQA_CATEGORIES) and "count" in result["test"]
    assert "query_actiontype" in result["table"]


def test_epoch_loss_is_the_mean_over_its_batches(config, monkeypatch):
    """B6.7: the official loop reused the batch index in the loss loop, so its average loss was wrong."""
    seen = []

    def fake_loss(logits, answers, trace, alpha, beta):
        seen.append(float(len(seen) + 1))
        return logits.sum() * 0 + seen[-1], {"ce": seen[-1], "consistency": 0.0, "hsic": 0.0}

    monkeypatch.setattr(train_module, "dualvgr_loss", fake_loss)
    trainer = train_module.Trainer(config(), CPU1)
    losses = trainer.train_epoch()
    assert len(seen) == len(epoch_batches(len(trainer.train_set), 16, 666, CPU1)) > 2
    assert losses["ce"] == pytest.approx(sum(seen) / len(seen))


def test_epoch_batches_split_ranks_evenly_and_drop_a_trailing_single():
    assert [len(b) for b in epoch_batches(33, 16, 0, CPU1)] == [16, 16]  # BatchNorm cannot train on one
    ranks = [epoch_batches(31, 8, 0, Dist(r, 2, torch.device("cpu"))) for r in (0, 1)]
    assert [len(b) for b in ranks[0]] == [len(b) for b in ranks[1]] == [4, 4, 4, 4]
    assert set(i for r in ranks for b in r for i in b) == set(range(31))
    assert epoch_batches(40, 8, 1, CPU1) != epoch_batches(40, 8, 2, CPU1)


def _write(tmp_path, cfg, **changes):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**cfg.to_dict(), **changes}))
    return str(path)


@pytest.mark.parametrize("case", ["missing_data", "clip_count", "unknown_key", "bad_checkpoint", "corrupt_pickle",
                                  "no_cuda"])
def test_bad_input_is_one_line(config, tmp_path, tiny_data, capsys, case):
    cfg = config()
    if case == "missing_data":
        argv, needle = ["train", "--config", _write(tmp_path, cfg, data=str(tmp_path / "nope"))], "msvd-qa_vocab.json"
    elif case == "clip_count":
        argv, needle = ["train", "--config", _write(tmp_path, cfg, num_clips=5)], "msvd-qa_appearance_feat.h5"
    elif case == "unknown_key":
        argv, needle = ["train", "--config", _write(tmp_path, cfg, unit_layer=2)], "did you mean 'unit_layers'"
    elif case == "no_cuda":
        if torch.cuda.is_available():
            pytest.skip("a CUDA device is visible")
        argv, needle = ["train", "--config", _write(tmp_path, cfg, device="cuda")], "no CUDA device is visible"
    elif case == "bad_checkpoint":
        bad = tmp_path / "best.pt"
        bad.write_bytes(b"not a checkpoint")
        argv, needle = ["eval", "--checkpoint", str(bad)], "best.pt"
    else:
        data = tmp_path / "data"
        data.mkdir()
        for f in os.listdir(tiny_data):
            (data / f).write_bytes((tiny_data / f).read_bytes())
        (data / "msvd-qa_train_questions.pt").write_bytes(b"\x80\x04garbage")
        argv, needle = ["train", "--config", _write(tmp_path, cfg, data=str(data))], "msvd-qa_train_questions.pt"
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and err[0].startswith("dualvgr "), err


def _with_nan_features(tiny_data, tmp_path, kind, row=3):
    import h5py

    data = tmp_path / "nan-data"
    data.mkdir()
    for f in os.listdir(tiny_data):
        (data / f).write_bytes((tiny_data / f).read_bytes())
    name = {"appearance": "resnet_features", "motion": "resnext_features"}[kind]
    with h5py.File(data / f"msvd-qa_{kind}_feat.h5", "r+") as h5:
        values = h5[name][row]
        values.flat[0] = np.nan
        h5[name][row] = values
    return data


@pytest.mark.parametrize("kind", ["appearance", "motion"])
def test_nan_features_are_one_line_naming_file_and_row_before_any_run_folder(config, tmp_path, tiny_data, capsys,
                                                                             kind):
    data = _with_nan_features(tiny_data, tmp_path, kind)
    assert cli.main(["train", "--config", _write(tmp_path, config(), data=str(data))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"msvd-qa_{kind}_feat.h5" in err[0] and "row 3 holds NaN" in err[0], err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("kind", ["appearance", "motion"])
def test_nan_in_streamed_features_is_found_before_any_run_folder_unless_the_check_is_skipped(config, tmp_path,
                                                                                             tiny_data, capsys, kind):
    """in_memory: false reads rows per batch; train reads every row once first (check_features)."""
    cfg = _write(tmp_path, config(in_memory=False), data=str(_with_nan_features(tiny_data, tmp_path, kind)))
    assert cli.main(["train", "--config", cfg]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"msvd-qa_{kind}_feat.h5" in err[0] and "row 3 holds NaN" in err[0], err
    assert not (tmp_path / "runs").exists()
    assert cli.main(["train", "--config", cfg, "--skip-data-check"]) == 2  # the row is then met mid-epoch
    assert (tmp_path / "runs" / "msvd-qa" / "run" / "config.yaml").is_file()


def test_nan_features_read_per_item_are_one_line_naming_file_and_row(tiny_data, tmp_path):
    from common.data.videoqa import load_videoqa

    row = int(load_videoqa(tiny_data, "msvd-qa", "train", num_clips=3, feature_dim=48).app_rows[0])
    dataset = load_videoqa(_with_nan_features(tiny_data, tmp_path, "appearance", row), "msvd-qa", "train",
                           num_clips=3, feature_dim=48)  # streamed: each item read when asked for
    with pytest.raises(DataFormatError, match=f"resnet_features row {row} holds NaN"):
        dataset[0]


def test_a_loss_turning_nan_mid_run_stops_in_one_line_keeping_the_last_finite_checkpoint(config, tmp_path, capsys,
                                                                                          monkeypatch):
    """NaN injected into the first loss of epoch 1: one line naming epoch, step and term, no update, and last.pt
    byte for byte the one written after epoch 0; metrics.jsonl holds only the finite epoch."""
    run = tmp_path / "runs" / "msvd-qa" / "run"
    seen = {"epochs": 0, "last": None}
    real_epoch, real_loss = train_module.Trainer.train_epoch, train_module.dualvgr_loss

    def train_epoch(self, save=None):
        seen["epochs"] += 1
        if seen["epochs"] == 2:
            seen["last"] = (run / "checkpoints" / "last.pt").read_bytes()
        return real_epoch(self, save)

    def loss(*args):
        total, parts = real_loss(*args)
        if seen["epochs"] == 2:
            return total * float("nan"), {**parts, "ce": float("nan")}
        return total, parts

    monkeypatch.setattr(train_module.Trainer, "train_epoch", train_epoch)
    monkeypatch.setattr(train_module, "dualvgr_loss", loss)
    assert cli.main(["train", "--config", _write(tmp_path, config(epochs=3)), "--run-name", "run"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "loss term 'ce' is nan at epoch 1, step 0" in err.strip().splitlines()[-1], err
    assert err.strip().splitlines()[-1].startswith("dualvgr train: error:")  # after epoch 0's progress bars
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    assert (run / "checkpoints" / "last.pt").read_bytes() == seen["last"]
