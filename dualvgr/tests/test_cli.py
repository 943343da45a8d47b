"""The command line follows the contract every project shares: verbs, flags, --device auto, kill and resume."""

import subprocess
import sys

import yaml

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
