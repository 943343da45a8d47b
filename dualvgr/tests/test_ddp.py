"""``torchrun`` DDP: two gloo CPU processes train one run; rank 0 writes the results, ranks stay in sync."""

import subprocess
import sys

import torch
import yaml

from common.distributed import clean_environment, free_port


def test_two_process_training_under_torchrun(config, tmp_path):
    cfg = config(epochs=2, run_name="ddp")
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), "-m", "dualvgr.cli", "train", "--config", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=clean_environment(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "runs" / "msvd-qa" / "ddp"
    assert (run / "summary.json").is_file() and (run / "results.md").is_file() and "| test at best val |" in proc.stdout
    rank0 = torch.load(run / "checkpoints" / "last.pt", weights_only=False)["trainer"]
    rank1 = torch.load(run / ".rank1" / "checkpoints" / "last.pt", weights_only=False)["trainer"]
    assert rank0["epoch"] == rank1["epoch"] == 2
    assert all(torch.equal(v, rank1["model"][k]) for k, v in rank0["model"].items())  # replicas in sync
