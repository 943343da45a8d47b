"""Worker for test_ddp.py: a few DE-Net training steps on fixed batches, single-process or under torchrun.

argv: config overrides (JSON), batches file (torch.save'd images/tokens/lengths [S, N, ...]), output JSON.
Rank r takes rows r*b .. (r+1)*b - 1 of every batch (b = config.batch_size). Rank 0 writes, per rank, the losses of
every step and a checksum of every parameter of G, D and C (not the per-process BatchNorm buffers) after the last step.
"""

import json
import sys

import torch
import torch.distributed as dist

from common import distributed
from common.rng import set_seed
from denet.config import load_config
from denet.train import Trainer


def main() -> None:
    config = load_config(None, **json.loads(sys.argv[1]))
    batches = torch.load(sys.argv[2])
    where = distributed.setup("cpu")
    torch.set_num_threads(1)
    set_seed(config.seed)
    trainer = Trainer(config, where)
    trainer.train_mode()
    lo, hi = where.rank * config.batch_size, (where.rank + 1) * config.batch_size
    losses = [trainer.step(batches["images"][s, lo:hi], batches["tokens"][s, lo:hi], batches["lengths"][s, lo:hi])
              for s in range(batches["images"].shape[0])]
    sums = {f"{name}.{k}": float(v.detach().double().sum()) for name in ("netG", "netD", "netC")
            for k, v in getattr(trainer.nets, name).named_parameters()}  # BatchNorm buffers stay per process
    mine = {"losses": losses, "params": sums}
    everyone = [None] * where.world_size
    if where.world_size > 1:
        dist.all_gather_object(everyone, mine)
    else:
        everyone = [mine]
    if where.is_main:
        with open(sys.argv[3], "w") as f:
            json.dump({"world_size": where.world_size, "ranks": everyone}, f)
    if where.world_size > 1:
        dist.barrier()  # leave together: a rank that tears gloo down while another still runs can abort
    distributed.teardown()


if __name__ == "__main__":
    main()
