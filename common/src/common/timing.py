"""Wall-clock and memory measurements for the projects' ``bench`` commands."""

from __future__ import annotations

import resource
import sys
import time

import torch


def sync(device: torch.device) -> None:
    """Wait for queued kernels, so that wall-clock times cover the work (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def timed(fn, n: int, warmup: int, device: torch.device) -> tuple[list[float], float | None]:
    """Run ``fn`` ``warmup`` times untimed, then ``n`` times timed; (seconds per call, CUDA peak MiB or None)."""
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(n):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return times, torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
