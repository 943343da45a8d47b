"""``torchrun`` DDP: two gloo CPU processes train one run; rank 0 writes the checkpoint, the ranks stay in sync."""

import dataclasses
import json
import subprocess
import sys

import torch
import yaml

from common.distributed import clean_environment, free_port


def test_two_process_training_under_torchrun(config, tmp_path):
    cfg = config(epochs=1, batch_size=2, run_name="ddp", log_every=1)
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(dataclasses.asdict(cfg)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), "-m", "storyimager.cli", "train", "--config", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=clean_environment(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "runs" / "smoke" / "ddp"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = 51 // 4  # the fixture's 51 training stories, 2 ranks x batch 2 per step
    assert len(rows) == steps and all(r["loss"] > 0 for r in rows)
    state = torch.load(run / "model.pt", weights_only=False)
    assert state["step"] == steps
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=False)
    assert all(torch.equal(state["model"][k], last["model"][k]) for k in state["model"])
