"""The command line follows the contract every project shares: verbs, flags, --device auto, kill and resume."""

import subprocess
import sys

from befa.cli import parser
from common.cli import contract_violations
from common.resume_check import kill_then_resume, records
from common.synthetic import mmrec as synthetic_mmrec


def test_cli_has_the_shared_verbs_and_flags():
    assert contract_violations(parser()) == []


def test_train_killed_mid_run_and_resumed_ends_as_an_uninterrupted_run(tmp_path):
    """MGCN + BeFA (its dropout draws from the global RNG): SIGKILL after the first epoch's record, --resume."""
    data = synthetic_mmrec.write(tmp_path / "tiny", seed=1, n_users=150, n_items=90, image_dim=48, text_dim=24)
    config = tmp_path / "c.yaml"
    config.write_text(f"data: {data}\ndataset: tiny\nsynthetic: true\ncache_dir: {tmp_path / 'g'}\n"
                      f"runs_dir: {tmp_path / 'runs'}\nepochs: 4\ntrain_batch_size: 256\n")
    runs = tmp_path / "runs" / "tiny"

    def command(name):
        return [sys.executable, "-m", "befa.cli", "train", "--config", str(config), "--model", "mgcn",
                "--adapter", "on", "--run-name", name]

    assert subprocess.run(command("straight"), capture_output=True).returncode == 0
    kill_then_resume(command("killed"), runs / "killed", after=1)
    assert records(runs / "straight") == records(runs / "killed")
    assert len(records(runs / "killed")["metrics.jsonl"]) == 4
    assert (runs / "straight" / "result.json").read_text() == (runs / "killed" / "result.json").read_text()
