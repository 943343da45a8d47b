"""DDP: two gloo CPU processes under torchrun. NetG and NetD use BatchNorm (per-process batch statistics, as the
official DDP runs without SyncBatchNorm), so the run is compared step by step where that is exact: each rank's first
step equals a single process on that rank's half, and after every step both ranks hold the same parameters, which
differ from either half's single-process parameters (gradients are averaged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common.distributed import clean_environment, free_port

WORKER = Path(__file__).with_name("ddp_worker.py")


def _run(cmd: list[str], tmp_path: Path) -> None:
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=clean_environment(), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]


def test_two_process_ddp_syncs_gradients_and_matches_single_process_halves(assets, tmp_path):
    half, steps = 2, 2
    gen = torch.Generator().manual_seed(0)
    batches = {"images": torch.rand(steps, 2 * half, 3, 256, 256, generator=gen) * 2 - 1,
               "tokens": torch.randint(1, 20, (steps, 2 * half, 18), generator=gen),
               "lengths": torch.randint(3, 19, (steps, 2 * half), generator=gen)}
    torch.save(batches, tmp_path / "batches.pt")
    base = dict(data=str(assets["data"]), text_encoder=str(assets["text"]), image_encoder=str(assets["image"]),
                nf=4, damsm_input_size=96, batch_size=half, device="cpu")
    _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
          "--master_port", str(free_port()), str(WORKER), json.dumps(base), "batches.pt", str(tmp_path / "ddp.json")],
         tmp_path)
    ddp = json.loads((tmp_path / "ddp.json").read_text())
    assert ddp["world_size"] == 2
    rank0, rank1 = ddp["ranks"]
    for key in rank0["params"]:  # gradients are all-reduced: both replicas stay identical
        assert rank0["params"][key] == pytest.approx(rank1["params"][key], rel=1e-6, abs=1e-6), key
    # rank 0's first step is a single-process step on its half
    single = {}
    for rank in (0, 1):
        rows = slice(rank * half, (rank + 1) * half)
        torch.save({k: v[:, rows] for k, v in batches.items()}, tmp_path / f"half{rank}.pt")
        _run([sys.executable, str(WORKER), json.dumps(base), f"half{rank}.pt", str(tmp_path / f"single{rank}.json")],
             tmp_path)
        single[rank] = json.loads((tmp_path / f"single{rank}.json").read_text())["ranks"][0]
    # (g_adv and g_total are left out: they are taken after the D step, whose update is averaged under DDP)
    for rank, losses in ((0, rank0["losses"]), (1, rank1["losses"])):
        for key, value in single[rank]["losses"][0].items():
            if key in ("g_adv", "g_total"):
                continue
            assert losses[0][key] == pytest.approx(value, rel=1e-4, abs=1e-5), (rank, key)
    moved = [k for k in rank0["params"] if k.startswith("netG.") and
             abs(rank0["params"][k] - single[0]["params"][k]) > 1e-6 * max(1.0, abs(single[0]["params"][k]))]
    assert moved, "the DDP parameters equal the single-process ones: the other rank's gradient was not averaged in"
