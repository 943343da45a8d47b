"""The command line follows the contract every project shares: verbs, flags, --device auto, kill and resume."""

import subprocess
import sys

import yaml

from common.bad_input_check import one_line_error
from common.cli import contract_violations
from common.resume_check import kill_then_resume, records
from dualvgr.cli import parser


def test_cli_has_the_shared_verbs_and_flags():
    assert contract_violations(parser()) == []


def test_train_killed_mid_run_and_resumed_ends_as_an_uninterrupted_run(config, tmp_path):
    """SIGKILL after the first epoch's record, then --resume: the records and the summary of a straight run."""
    path = tmp_path / "c.yaml"
    values = {k: v for k, v in vars(config(epochs=3)).items() if k not in ("run_name", "device")}
    path.write_text(yaml.safe_dump(values))
    runs = tmp_path / "runs" / "msvd-qa"

    def command(name):
        return [sys.executable, "-m", "dualvgr.cli", "train", "--config", str(path), "--run-name", name,
                "--device", "cpu"]

    assert subprocess.run(command("straight"), capture_output=True).returncode == 0
    kill_then_resume(command("killed"), runs / "killed", after=1)
    assert records(runs / "straight") == records(runs / "killed")
    assert len(records(runs / "killed")["metrics.jsonl"]) == 3
    assert (runs / "straight" / "results.md").read_text() == (runs / "killed" / "results.md").read_text()


def test_resume_without_a_checkpoint_names_the_run_folder_and_starts_nothing(config, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in vars(config()).items() if k not in ("run_name", "device")}))
    done = subprocess.run([sys.executable, "-m", "dualvgr.cli", "train", "--config", str(path), "--run-name", "typo",
                           "--resume", "--device", "cpu"], capture_output=True, text=True)
    one_line_error(done, str(tmp_path / "runs" / "msvd-qa" / "typo"), "nothing to resume")
    assert not (tmp_path / "runs" / "msvd-qa" / "typo").exists()


def test_bench_prints_what_it_timed_with_the_threads_asked_for_and_no_stored_comparison(capsys):
    """``dualvgr bench`` reports this run only (no ratio against a figure measured on another day); ``--threads``
    sets torch's thread count, which the report names."""
    import torch

    from dualvgr.cli import main

    before = torch.get_num_threads()
    try:
        assert main(["bench", "--config", "configs/smoke.yaml", "--batch-size", "2", "--steps", "1", "--threads", "1",
                     "--vocab", "50", "--answers", "10", "--question-len", "6", "--device", "cpu"]) == 0
    finally:
        torch.set_num_threads(before)
    out = capsys.readouterr().out
    assert "cpu, 1 threads, appearance LSTM: nn" in out and "step " in out
    assert "official" not in out and "goal" not in out and "x (" not in out
