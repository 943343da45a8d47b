"""``torchrun`` process-group plumbing and the per-epoch data order of a (possibly distributed) run.

A run is distributed when ``WORLD_SIZE`` > 1 in the environment (``torchrun`` sets it). The backend is NCCL on
CUDA and gloo on the CPU; each process uses ``cuda:LOCAL_RANK`` when the config asks for CUDA.
"""

from __future__ import annotations

import itertools
import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, Sampler, SequentialSampler


@dataclass(frozen=True)
class Dist:
    """This process's place in the run: ``rank`` of ``world_size``, and its device."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str) -> Dist:
    """Join the ``torchrun`` process group if there is one; pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank if world_size > 1 else (dev.index or 0))
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Dist(dist.get_rank() if world_size > 1 else 0, world_size, dev)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast(obj):
    """Rank 0's ``obj`` on every rank (identity when not distributed)."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate equal-shaped per-rank tensors along dim 0 (identity when not distributed)."""
    if not dist.is_initialized():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def mean_across(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Per-key mean over ranks of a dict of floats (identity when not distributed)."""
    if not dist.is_initialized():
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(keys, (t / dist.get_world_size()).tolist()))


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for ``torchrun --master_port`` in tests and local launches)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_environment() -> dict[str, str]:
    """This process's environment without the ``torchrun`` variables, one thread per process (for launching a
    fresh single- or multi-process run from inside another)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    return env


class _SkipFirst(Sampler):
    """``sampler`` without its first ``n`` indices; it draws its order exactly when and as ``sampler`` would."""

    def __init__(self, sampler: Sampler, n: int) -> None:
        self.sampler, self.n = sampler, n

    def __iter__(self):
        return itertools.islice(iter(self.sampler), self.n, None)

    def __len__(self) -> int:
        return max(len(self.sampler) - self.n, 0)


def epoch_loader(ds: Dataset, batch_size: int, *, shuffle: bool, seed: int, epoch: int, num_workers: int,
                 where: Dist, skip: int = 0) -> DataLoader:
    """Batches of ``ds`` for one epoch (``drop_last``; a ``DistributedSampler`` whose epoch is set under torchrun),
    without its first ``skip`` batches (a run resumed mid-epoch). Order and any per-item randomness depend only on
    (seed, epoch) and the global RNG state, so a resumed run sees the same batches (per-item randomness drawn in
    worker processes, ``num_workers > 0``, is seeded per worker and differs after a skip)."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    if where.world_size > 1:
        sampler = DistributedSampler(ds, where.world_size, where.rank, shuffle=shuffle, seed=seed, drop_last=True)
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(ds, generator=generator) if shuffle else SequentialSampler(ds)
    return DataLoader(ds, batch_size=batch_size, sampler=_SkipFirst(sampler, skip * batch_size) if skip else sampler,
                      num_workers=num_workers, drop_last=True, generator=generator,
                      pin_memory=where.device.type == "cuda")
