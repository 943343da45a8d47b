"""``storyimager bench``: one K-frame story as one storyboard pass vs the K frames one at a time (same UNet).

Storyboard: ``sample_steps`` DDIM steps on the K-frame canvas (one UNet call per step on the CFG-doubled batch).
Frame by frame: K separate samplings of a single frame (layout K = 1, the frame's own caption), as
frame-by-frame story models generate (their history encoders not counted). Each variant runs in a fresh
process so that its peak memory is its own: the growth over the loaded model of ``max_memory_allocated`` (CUDA) or
of the peak RSS (CPU), over a warm-up run and the timed run. Also reports the training step time of one story.
Random-weight numbers measure speed only. ``paper_bench`` (``--paper-setting``) compares the storyboard with
AR-LDM's frame-by-frame generation, history encoder included, at Stable Diffusion 1.5's size.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time

import torch

from .config import StoryImagerConfig
from .masking import sample_masks
from .sampling import sample_story
from .train import build_model, step_generator


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run(config: StoryImagerConfig, variant: str, threads: int | None, queue) -> None:
    if threads:
        torch.set_num_threads(threads)
    model = build_model(config, config.device).eval()
    device = model.device
    captions = [f"frame {k + 1} of the story" for k in range(config.frames)]
    gen = torch.Generator().manual_seed(0)

    def once():
        if variant == "storyboard":
            sample_story(model, [captions], torch.ones(1, config.frames), steps=config.sample_steps,
                         guidance=config.guidance, generator=gen)
        elif variant == "frame_by_frame":
            model.layout.frames = 1
            try:
                for caption in captions:
                    sample_story(model, [[caption]], torch.ones(1, 1), steps=config.sample_steps,
                                 guidance=config.guidance, generator=gen)
            finally:
                model.layout.frames = config.frames
        else:  # one training step on one story
            model.train()
            images = torch.rand(1, config.frames, 3, config.resolution, config.resolution, generator=gen) * 2 - 1
            loss = model(images, [captions], sample_masks(1, config.frames, (1, 1, 1), gen), step_generator(0, 0, 0))
            loss.backward()

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 2**20
    else:
        base = _rss_mib()
    once()  # warm-up (allocator, kernels); its memory counts, its time does not
    start = time.perf_counter()
    once()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20 - base
    else:
        peak = _rss_mib() - base
    queue.put((time.perf_counter() - start, peak))


def bench(config: StoryImagerConfig, threads: int | None = None) -> dict[str, tuple[float, float]]:
    """{variant: (seconds, peak MiB)} for storyboard, frame_by_frame and train_step (``threads``: torch threads)."""
    ctx = mp.get_context("spawn")
    out = {}
    for variant in ("storyboard", "frame_by_frame", "train_step"):
        queue = ctx.Queue()
        proc = ctx.Process(target=_run, args=(config, variant, threads, queue))
        proc.start()
        out[variant] = queue.get()
        proc.join()
    return out
