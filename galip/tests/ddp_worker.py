"""Worker for test_ddp.py: run a few GALIP training steps on fixed batches, single-process or under torchrun.

argv: config overrides (JSON), batches file (torch.save'd dict of images/tokens/noise [S, N, ...]), output JSON.
Each process takes its contiguous slice of every batch (rank r: rows r*b .. (r+1)*b - 1, b = config.batch_size).
"""

import json
import sys

import torch

from common import distributed
from common.rng import set_seed
from galip.config import load_config
from galip.nets import load_clip_model
from galip.train import Trainer


def main() -> None:
    config = load_config(None, **json.loads(sys.argv[1]))
    batches = torch.load(sys.argv[2])
    where = distributed.setup("cpu")
    torch.set_num_threads(1)
    set_seed(config.seed)
    trainer = Trainer(config, load_clip_model(config, where.device), where)
    trainer.train_mode()
    lo, hi = where.rank * config.batch_size, (where.rank + 1) * config.batch_size
    losses = []
    for s in range(batches["images"].shape[0]):
        step = trainer.step(batches["images"][s, lo:hi], batches["tokens"][s, lo:hi], batches["noise"][s, lo:hi])
        losses.append(distributed.mean_across(step, where.device))
    if where.is_main:
        weights = {k: float(v.double().sum()) for k, v in trainer.nets.netG.state_dict().items()
                   if k.startswith("GBlocks.0.")}
        with open(sys.argv[3], "w") as f:
            json.dump({"world_size": where.world_size, "losses": losses, "weights": weights}, f)
    distributed.teardown()


if __name__ == "__main__":
    main()
