"""The command line follows the contract every project shares: verbs, flags, --device auto, kill and resume."""

import dataclasses
import subprocess
import sys

import torch
import yaml

from common.cli import contract_violations
from common.resume_check import kill_then_resume, records
from storyimager.cli import parser


def test_cli_has_the_shared_verbs_and_flags():
    assert contract_violations(parser()) == []


def test_train_killed_mid_epoch_and_resumed_ends_as_an_uninterrupted_run(config, tmp_path):
    """A checkpoint every 3 steps, records every 2: SIGKILL after the second record (inside the epoch's 12
    steps), then --resume from the step-3 checkpoint or later; the same records and the same weights."""
    path = tmp_path / "c.yaml"
    values = dataclasses.asdict(config(epochs=1, save_every=3, log_every=2))
    path.write_text(yaml.safe_dump({k: v for k, v in values.items() if k != "run_name"}))
    runs = tmp_path / "runs" / "smoke"

    def command(name):
        return [sys.executable, "-m", "storyimager.cli", "train", "--config", str(path), "--run-name", name]

    assert subprocess.run(command("straight"), capture_output=True).returncode == 0
    kill_then_resume(command("killed"), runs / "killed", after=2)
    assert records(runs / "straight") == records(runs / "killed")
    a, b = (torch.load(runs / name / "model.pt", weights_only=False)["model"] for name in ("straight", "killed"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
