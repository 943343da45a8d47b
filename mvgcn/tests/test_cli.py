"""The command line: help, train + eval on tiny SYNTHETIC data, and one-line errors for bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.bad_input_check import (
    INTERACTION_FILE_CASES,
    check_refused_resume,
    one_line_error,
    run_unprivileged,
    spoil_interaction_file,
)
from common.resume_check import kill_then_resume, records
from common.synthetic import mmrec as synthetic_mmrec
from mvgcn.cli import main


def test_every_command_has_help(capsys):
    for cmd in ([], ["train"], ["eval"], ["prepare"], ["bench"]):
        with pytest.raises(SystemExit) as exit_:
            main([*cmd, "--help"])
        assert exit_.value.code == 0
    assert "usage: mvgcn" in capsys.readouterr().out


def write_config(tmp_path, data_dir, **extra):
    lines = [f"data: {data_dir}", f"dataset: {data_dir.name}", f"cache_dir: {tmp_path / 'cache'}",
             f"runs_dir: {tmp_path / 'runs'}", "synthetic: true", "cl_loss: 0.01", "train_batch_size: 256",
             "epochs: 2"] + [f"{k}: {v}" for k, v in extra.items()]
    path = tmp_path / "c.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_train_then_eval_checkpoint(tiny_data, tmp_path, capsys):
    assert main(["train", "--config", str(write_config(tmp_path, tiny_data)), "--run-name", "r"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("MGCN on tiny — SYNTHETIC")
    best = tmp_path / "runs" / "tiny" / "r" / "cl_loss=0.01" / "checkpoints" / "best.pt"
    assert main(["eval", "--checkpoint", str(best)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SYNTHETIC") and '"recall@20"' in out


def assert_one_line_error(capsys, *fragments):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for f in fragments:
        assert f in err, err


def test_misspelled_config_key(tiny_data, tmp_path, capsys):
    path = write_config(tmp_path, tiny_data, cl_los=0.1)
    assert main(["train", "--config", str(path)]) == 2
    assert_one_line_error(capsys, "c.yaml", "unknown key 'cl_los'", "did you mean 'cl_loss'")


def test_mistyped_config_value(tiny_data, tmp_path, capsys):
    assert main(["train", "--config", str(write_config(tmp_path, tiny_data, knn_k="ten"))]) == 2
    assert_one_line_error(capsys, "c.yaml", "knn_k")


def copy_dataset(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name.replace(src.name, dst.name)).write_bytes(f.read_bytes())
    return dst


def test_missing_feature_file(tiny_data, tmp_path, capsys):
    data = copy_dataset(tiny_data, tmp_path / "nofeat")
    (data / "text_feat.npy").unlink()
    assert main(["train", "--config", str(write_config(tmp_path, data))]) == 2
    assert_one_line_error(capsys, "text_feat.npy", "not found")


def test_features_for_the_wrong_number_of_items(tiny_data, tmp_path, capsys):
    data = copy_dataset(tiny_data, tmp_path / "wrong")
    np.save(data / "image_feat.npy", np.ones((7, 64), np.float32))
    assert main(["train", "--config", str(write_config(tmp_path, data))]) == 2
    assert_one_line_error(capsys, "image_feat.npy", "7 rows")


def test_missing_checkpoint(tmp_path, capsys):
    assert main(["eval", "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert_one_line_error(capsys, "none.pt", "not found")


def test_bench_runs_small_and_labels_data_synthetic(capsys):
    assert main(["bench", "--n-users", "150", "--n-items", "80", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SYNTHETIC") and "training epoch" in out and "peak resident memory" in out


def test_reproduce_embedded_default_prints_a_synthetic_report(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # .cache/ and runs/ go here
    assert main(["reproduce"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("mvgcn reproduce: SYNTHETIC embedded default")
    assert "popularity" in out and (tmp_path / ".cache" / "mvgcn" / "synthetic" / "smoke" / "smoke.inter").is_file()


def test_cli_has_the_shared_verbs_and_flags():
    from common.cli import contract_violations
    from mvgcn.cli import parser

    assert contract_violations(parser()) == []


def test_train_killed_mid_run_and_resumed_ends_as_an_uninterrupted_run(tiny_data, tmp_path):
    """The run contract through the CLI: SIGKILL inside the grid's second run, then --resume."""
    config = write_config(tmp_path, tiny_data, epochs=3)
    config.write_text(config.read_text().replace("cl_loss: 0.01", "cl_loss: [0.01, 0.1]"))

    def command(name):
        return [sys.executable, "-m", "mvgcn.cli", "train", "--config", str(config), "--run-name", name]

    assert subprocess.run(command("straight"), capture_output=True).returncode == 0
    kill_then_resume(command("killed"), tmp_path / "runs" / "tiny" / "killed", after=4)
    straight, killed = (records(tmp_path / "runs" / "tiny" / name) for name in ("straight", "killed"))
    assert straight == killed and sum(map(len, killed.values())) == 6
    summaries = [json.loads((tmp_path / "runs" / "tiny" / name / "summary.json").read_text()) for name in
                 ("straight", "killed")]
    assert [s["runs"] for s in summaries[:1]] == [s["runs"] for s in summaries[1:]]


@pytest.mark.parametrize("case", INTERACTION_FILE_CASES)
def test_an_interaction_file_that_cannot_be_used_is_one_line_and_leaves_no_run_or_cache(tiny_data, tmp_path, case):
    """Mode 000 (read without root's capabilities), a directory in its place, only the header, or nothing: exit 2,
    one stderr line naming the file, no traceback, no run folder, no cache."""
    data = copy_dataset(tiny_data, tmp_path / "bad")
    expected = spoil_interaction_file(data / "bad.inter", case)
    command = [sys.executable, "-m", "mvgcn.cli", "train", "--config", str(write_config(tmp_path, data))]
    one_line_error(run_unprivileged(command), "bad.inter", expected)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists()


def test_resume_without_a_checkpoint_names_the_run_folder_and_starts_nothing(tiny_data, tmp_path):
    config = write_config(tmp_path, tiny_data)
    check_refused_resume([sys.executable, "-m", "mvgcn.cli", "train", "--config", str(config), "--run-name", "typo"],
                         tmp_path / "runs" / "tiny" / "typo")


@pytest.mark.parametrize("skip", [False, True])
def test_a_loss_turning_nan_mid_run_stops_in_one_line_keeping_the_last_finite_checkpoint(tiny_data, tmp_path, capsys,
                                                                                          monkeypatch, skip):
    """A NaN injected into the first loss of epoch 1: training stops before that update, one line naming epoch,
    step and term, and last.pt is byte for byte the one written after epoch 0; with skip_nonfinite the step is
    skipped and the run ends normally with finite records."""
    from mvgcn.model import MGCN
    from mvgcn.train import BPRTrainer

    run = tmp_path / "runs" / "tiny" / "r" / "cl_loss=0.01"
    seen = {"epochs": 0, "last": None}
    real_epoch, real_loss = BPRTrainer.train_epoch, MGCN.loss

    def train_epoch(self):
        seen["epochs"] += 1
        if seen["epochs"] == 2:
            seen["last"] = (run / "checkpoints" / "last.pt").read_bytes()
        return real_epoch(self)

    def loss(self, *args):
        out = real_loss(self, *args)
        if seen["epochs"] == 2 and seen.get("poisoned") is None:
            seen["poisoned"] = True
            out = {**out, "bpr": out["bpr"] * float("nan"), "total": out["total"] * float("nan")}
        return out

    monkeypatch.setattr(BPRTrainer, "train_epoch", train_epoch)
    monkeypatch.setattr(MGCN, "loss", loss)
    config = write_config(tmp_path, tiny_data, epochs=3, skip_nonfinite=str(skip).lower())
    code = main(["train", "--config", str(config), "--run-name", "r"])
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    if skip:
        assert code == 0 and len(records) == 3
        assert all(np.isfinite(r["loss"]["bpr"]) for r in records)
        return
    assert code == 2
    assert_one_line_error(capsys, "loss term 'bpr' is nan at epoch 1, step 0", "last.pt")
    assert len(records) == 1 and (run / "checkpoints" / "last.pt").read_bytes() == seen["last"]


def test_eval_on_data_the_checkpoint_was_not_trained_on_is_one_line_before_any_graph_is_cached(tiny_data, tmp_path,
                                                                                              capsys):
    assert main(["train", "--config", str(write_config(tmp_path, tiny_data, epochs=1)), "--run-name", "r"]) == 0
    other = synthetic_mmrec.write(tmp_path / "other" / "tiny", seed=2, n_users=120, n_items=80, image_dim=64,
                                  text_dim=32)
    best = tmp_path / "runs" / "tiny" / "r" / "cl_loss=0.01" / "checkpoints" / "best.pt"
    cached = sorted((tmp_path / "cache").rglob("*"))
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(best), "--data", str(other)]) == 2
    assert_one_line_error(capsys, "best.pt", "does not match the data", "user_embedding.weight", "[120]")
    assert sorted((tmp_path / "cache").rglob("*")) == cached


def test_main_puts_large_cpu_tensors_on_huge_pages_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    with pytest.raises(SystemExit):
        main(["--version"])
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "1"
    monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", "0")
    with pytest.raises(SystemExit):
        main(["--version"])
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "0"


def transparent_huge_pages_available() -> bool:
    try:
        return "[never]" not in Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not transparent_huge_pages_available(), reason="no transparent huge pages on this system")
def test_importing_the_cli_allocates_no_tensor_so_huge_pages_take_effect():
    """PyTorch reads THP_MEM_ALLOC_ENABLE at its first tensor allocation; were one made on import, a fresh
    64 MiB tensor would cost 16,384 page faults of 4 KiB instead of a few dozen of 2 MiB."""
    child = ("import resource, mvgcn.cli; mvgcn.cli.use_huge_pages(); import torch; "
             "f = resource.getrusage(resource.RUSAGE_SELF).ru_minflt; torch.ones(16 << 20); torch.ones(16 << 20); "
             "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f)")
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    faults = int(subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True,
                                check=True).stdout)
    assert faults < 16_384  # two tensors of 16,384 pages each on 4 KiB pages
