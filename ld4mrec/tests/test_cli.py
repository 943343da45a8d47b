"""The command line: help, train + eval (one-step and k-step), one-line errors for bad input."""

import json
import subprocess
import sys

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
from ld4mrec.cli import main


def test_every_command_has_help(capsys):
    for cmd in ([], ["train"], ["eval"], ["bench"], ["reproduce"], ["grid"], ["ablate"]):
        with pytest.raises(SystemExit) as exit_:
            main([*cmd, "--help"])
        assert exit_.value.code == 0
    assert "usage: ld4mrec" in capsys.readouterr().out


def write_config(tmp_path, data_dir, **extra):
    lines = [f"data: {data_dir}", f"dataset: {data_dir.name}", f"runs_dir: {tmp_path / 'runs'}", "synthetic: true",
             "hidden: 64", "batch_size: 64", "epochs: 2"] + [f"{k}: {v}" for k, v in extra.items()]
    path = tmp_path / "c.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_train_then_eval_one_step_and_reverse(tiny_data, tmp_path, capsys):
    assert main(["train", "--config", str(write_config(tmp_path, tiny_data)), "--run-name", "r"]) == 0
    assert capsys.readouterr().out.startswith("LD4MRec on tiny — SYNTHETIC")
    best = tmp_path / "runs" / "tiny" / "r" / "checkpoints" / "best.pt"
    assert main(["eval", "--checkpoint", str(best)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SYNTHETIC") and '"reverse_steps": 0' in out
    assert main(["eval", "--checkpoint", str(best), "--reverse-steps", "3"]) == 0
    assert '"reverse_steps": 3' in capsys.readouterr().out


def one_line(capsys, *fragments):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for f in fragments:
        assert f in err, err


def test_misspelled_key(tiny_data, tmp_path, capsys):
    assert main(["train", "--config", str(write_config(tmp_path, tiny_data, soft_gama=0.1))]) == 2
    one_line(capsys, "c.yaml", "unknown key 'soft_gama'", "soft_gamma")


def test_t_in_outside_the_schedule(tiny_data, tmp_path, capsys):
    assert main(["train", "--config", str(write_config(tmp_path, tiny_data, t_in=9))]) == 2
    one_line(capsys, "c.yaml", "t_in")


def copy_dataset(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name.replace(src.name, dst.name)).write_bytes(f.read_bytes())
    return dst


def test_missing_feature_file(tiny_data, tmp_path, capsys):
    data = copy_dataset(tiny_data, tmp_path / "nofeat")
    (data / "image_feat.npy").unlink()
    assert main(["train", "--config", str(write_config(tmp_path, data))]) == 2
    one_line(capsys, "image_feat.npy", "not found")


def test_features_for_the_wrong_number_of_items(tiny_data, tmp_path, capsys):
    data = copy_dataset(tiny_data, tmp_path / "wrong")
    np.save(data / "text_feat.npy", np.ones((3, 24), np.float32))
    assert main(["train", "--config", str(write_config(tmp_path, data))]) == 2
    one_line(capsys, "text_feat.npy", "3 rows")


def test_bench_runs_small_and_labels_data_synthetic(capsys):
    assert main(["bench", "--n-users", "120", "--n-items", "60", "--steps", "2", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SYNTHETIC") and "reverse_steps 3" in out and "peak resident memory" in out


def test_reproduce_embedded_default_prints_results_k_step_and_ablation_tables(tmp_path, monkeypatch, capsys):
    """``make reproduce-ld4mrec`` end to end, with configs/smoke.yaml cut to 2 epochs per run."""
    import ld4mrec.reproduce

    configs = tmp_path / "configs"
    configs.mkdir()
    smoke = (ld4mrec.reproduce.CONFIGS / "smoke.yaml").read_text()
    (configs / "smoke.yaml").write_text(smoke.replace("epochs: 100", "epochs: 2"))
    monkeypatch.setattr(ld4mrec.reproduce, "CONFIGS", configs)
    monkeypatch.chdir(tmp_path)  # .cache/ and runs/ go here
    assert main(["reproduce"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("ld4mrec reproduce: SYNTHETIC embedded default")
    assert "popularity" in out and (tmp_path / ".cache" / "ld4mrec" / "synthetic" / "smoke" / "smoke.inter").is_file()
    assert "| one step (forward-free) |" in out and "| 5 reverse steps (= T) |" in out
    assert "mean ± sd over seeds 999, 1000, 1001" in out and "| one-step training (no diffusion) |" in out


def test_cli_has_the_shared_verbs_and_flags():
    from common.cli import contract_violations
    from ld4mrec.cli import parser

    assert contract_violations(parser()) == []


def test_train_killed_mid_run_and_resumed_ends_as_an_uninterrupted_run(tiny_data, tmp_path):
    """The run contract through the CLI: SIGKILL after the first epoch's record, then --resume."""
    config = write_config(tmp_path, tiny_data, epochs=4)
    runs = tmp_path / "runs" / "tiny"

    def command(name):
        return [sys.executable, "-m", "ld4mrec.cli", "train", "--config", str(config), "--run-name", name]

    assert subprocess.run(command("straight"), capture_output=True).returncode == 0
    kill_then_resume(command("killed"), runs / "killed", after=1)
    assert records(runs / "straight") == records(runs / "killed")
    assert len(records(runs / "killed")["metrics.jsonl"]) == 4
    straight, killed = (json.loads((runs / name / "summary.json").read_text()) for name in ("straight", "killed"))
    assert {**straight, "run_dir": ""} == {**killed, "run_dir": ""}


@pytest.mark.parametrize("case", INTERACTION_FILE_CASES)
def test_an_interaction_file_that_cannot_be_used_is_one_line_and_leaves_no_run_or_cache(tiny_data, tmp_path, case):
    """Mode 000 (read without root's capabilities), a directory in its place, only the header, or nothing: exit 2,
    one stderr line naming the file, no traceback, no run folder, no cache."""
    data = copy_dataset(tiny_data, tmp_path / "bad")
    expected = spoil_interaction_file(data / "bad.inter", case)
    command = [sys.executable, "-m", "ld4mrec.cli", "train", "--config", str(write_config(tmp_path, data))]
    one_line_error(run_unprivileged(command), "bad.inter", expected)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists()


def test_resume_without_a_checkpoint_names_the_run_folder_and_starts_nothing(tiny_data, tmp_path):
    config = write_config(tmp_path, tiny_data)
    check_refused_resume([sys.executable, "-m", "ld4mrec.cli", "train", "--config", str(config), "--run-name", "typo"],
                         tmp_path / "runs" / "tiny" / "typo")


def test_a_loss_turning_nan_mid_run_stops_in_one_line_keeping_the_last_finite_checkpoint(tiny_data, tmp_path, capsys,
                                                                                          monkeypatch):
    """A NaN injected into the first loss of epoch 1: training stops before that update, one line naming epoch,
    step and term, and last.pt is byte for byte the one written after epoch 0."""
    from ld4mrec.model import LD4MRec
    from ld4mrec.train import Trainer

    run = tmp_path / "runs" / "tiny" / "r"
    seen = {"epochs": 0, "last": None}
    real_epoch, real_loss = Trainer.train_epoch, LD4MRec.loss

    def train_epoch(self):
        seen["epochs"] += 1
        if seen["epochs"] == 2:
            seen["last"] = (run / "checkpoints" / "last.pt").read_bytes()
        return real_epoch(self)

    def loss(self, *args):
        out = real_loss(self, *args)
        return out * float("inf") if seen["epochs"] == 2 else out

    monkeypatch.setattr(Trainer, "train_epoch", train_epoch)
    monkeypatch.setattr(LD4MRec, "loss", loss)
    assert main(["train", "--config", str(write_config(tmp_path, tiny_data, epochs=3)), "--run-name", "r"]) == 2
    one_line(capsys, "loss term 'loss' is inf at epoch 1, step 0", "last.pt")
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    assert (run / "checkpoints" / "last.pt").read_bytes() == seen["last"]
