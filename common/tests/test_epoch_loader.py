"""The per-epoch data order: fixed by (seed, epoch), and a run resumed mid-epoch gets the rest of the same order."""

import torch

from common.distributed import Dist, epoch_loader

CPU = Dist(0, 1, torch.device("cpu"))


def _batches(epoch, skip=0, seed=3):
    return [b.tolist() for b in epoch_loader(list(range(40)), 4, shuffle=True, seed=seed, epoch=epoch,
                                             num_workers=0, where=CPU, skip=skip)]


def test_order_depends_on_seed_and_epoch_only():
    assert _batches(2) == _batches(2) != _batches(3)
    assert _batches(2) != _batches(2, seed=4)
    assert sorted(sum(_batches(2), [])) == list(range(40))


def test_skipping_batches_gives_the_rest_of_the_same_epoch():
    assert _batches(2, skip=3) == _batches(2)[3:]
    assert len(epoch_loader(list(range(40)), 4, shuffle=True, seed=3, epoch=2, num_workers=0, where=CPU,
                            skip=3)) == 7
