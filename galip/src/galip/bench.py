"""Throughput measurements for ``galip bench``.

``text_to_image_throughput`` times the whole text -> image pipeline the paper's speed claim is about (tokenise the
captions, CLIP text encoder, ``NetG.generate``, clamp to [-1, 1], convert to uint8); ``sampling_throughput`` times
the generator alone (``NetG.generate`` on random sentence embeddings: no autograd, the blocks' in-place fast
path). ``tune_malloc_for_inference`` is an opt-in, process-wide allocator setting for CPU sampling runs.
Timing and memory come from ``common.timing``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import TYPE_CHECKING

import torch

from common.timing import peak_rss_mib, timed

if TYPE_CHECKING:
    from .models import NetG


def tune_malloc_for_inference() -> bool:
    """Let glibc keep freed memory for reuse: no ``mmap`` per large tensor, no trimming of the heap (process-wide).

    By default glibc serves every block over 32 MiB by a fresh ``mmap`` and unmaps it on free, so each large
    activation is page-faulted (and zeroed by the kernel) anew on every forward: about 680k minor faults per
    batch-8 forward of the birds generator. With ``M_MMAP_THRESHOLD``/``M_TRIM_THRESHOLD`` at their maximum the
    heap is reused instead: same results, 0 faults, batch-8 CPU sampling ~1.25x faster, peak RSS ~8% higher, and
    the process keeps its peak memory until it exits. Meant for ``galip sample``/``galip bench`` processes; call it
    once at start-up. Returns False (and changes nothing) where the C library has no ``mallopt`` (not glibc).
    """
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is None or not hasattr(libc, "mallopt") or not sys.platform.startswith("linux"):
        return False
    m_trim_threshold, m_mmap_threshold, largest = -1, -3, 2**31 - 1  # mallopt takes an int
    return bool(libc.mallopt(m_mmap_threshold, largest)) and bool(libc.mallopt(m_trim_threshold, largest))


def sampling_throughput(netG: NetG, batch_size: int, n_batches: int, warmup: int, cond_dim: int, nz: int,  # noqa: N803
                        device: str | torch.device, *, seed: int = 0) -> dict[str, float | int | str]:
    """Time ``netG.generate`` on random noise and random sentence embeddings.

    ``warmup`` untimed batches come first (allocator and oneDNN primitive caches), then ``n_batches`` timed ones.
    Returns ``images_per_s`` (over all timed batches), ``s_per_batch`` (mean) and ``s_per_batch_min``,
    ``peak_rss_mib`` (whole process, so it includes model loading) and, on CUDA, ``peak_cuda_mib``; plus the
    settings (``batch_size``, ``n_batches``, ``warmup``, ``threads``, ``device``).
    """
    _check_counts(batch_size, n_batches, warmup)
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(batch_size, nz, generator=gen).to(device)
    sent = torch.randn(batch_size, cond_dim, generator=gen).to(device)
    return _throughput(lambda: netG.generate(noise, sent), batch_size, n_batches, warmup, device)


def _check_counts(batch_size: int, n_batches: int, warmup: int) -> None:
    if batch_size < 1 or n_batches < 1 or warmup < 0:
        raise ValueError(f"need batch_size >= 1, n_batches >= 1, warmup >= 0; got {batch_size}, {n_batches}, {warmup}")


def _throughput(run, batch_size: int, n_batches: int, warmup: int, device: torch.device
                ) -> dict[str, float | int | str]:
    """Time ``run()`` (one batch of ``batch_size`` images) ``n_batches`` times after ``warmup`` untimed calls."""
    times, cuda_peak = timed(run, n_batches, warmup, device)
    result: dict[str, float | int | str] = {
        "images_per_s": batch_size * n_batches / sum(times),
        "s_per_batch": sum(times) / n_batches,
        "s_per_batch_min": min(times),
        "peak_rss_mib": peak_rss_mib(),
        "batch_size": batch_size,
        "n_batches": n_batches,
        "warmup": warmup,
        "threads": torch.get_num_threads(),
        "device": str(device),
    }
    if cuda_peak is not None:
        result["peak_cuda_mib"] = cuda_peak
    return result


def text_to_image_throughput(netG: NetG, text_encoder, batch_size: int, n_batches: int, warmup: int,  # noqa: N803
                             nz: int, device: str | torch.device, *, seed: int = 0) -> dict[str, float | int | str]:
    """Time captions -> uint8 images [B, S, S, 3]: tokenise ``batch_size`` distinct captions, encode them with the
    CLIP text encoder, ``galip.sample.generate``, clamp, to uint8. Same keys as :func:`sampling_throughput`."""
    from common.data.text_image import ClipTokenizer

    from .sample import generate

    _check_counts(batch_size, n_batches, warmup)
    device = torch.device(device)
    tokenizer = ClipTokenizer()
    captions = [f"a small bird with a red crown and white belly, number {i}" for i in range(batch_size)]
    noise = torch.randn(batch_size, nz, generator=torch.Generator().manual_seed(seed)).to(device)

    def pipeline() -> torch.Tensor:
        tokens = torch.stack([tokenizer(c)[0] for c in captions]).to(device)
        images = generate(netG, text_encoder, tokens, noise).clamp_(-1, 1)
        return ((images + 1) * 127.5).round_().to(torch.uint8).permute(0, 2, 3, 1).cpu()

    return _throughput(pipeline, batch_size, n_batches, warmup, device)


def training_step_time(trainer, batch_size: int, n_steps: int, warmup: int = 1, *, seed: int = 0,
                       ) -> dict[str, float | int | str]:
    """Seconds per official training step (D step + G step, ``Trainer.step``) on random images and captions."""
    from common.data.text_image import ClipTokenizer

    device = trainer.where.device
    cfg = trainer.config
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(batch_size, 3, cfg.imsize, cfg.imsize, generator=gen) * 2 - 1
    tok = ClipTokenizer()
    tokens = torch.stack([tok(f"a photo of bird number {i}")[0] for i in range(batch_size)])
    trainer.train_mode()
    times, cuda_peak = timed(lambda: trainer.step(images, tokens), n_steps, warmup, device)
    result: dict[str, float | int | str] = {
        "s_per_step": sum(times) / n_steps, "steps_per_s": n_steps / sum(times), "batch_size": batch_size,
        "n_steps": n_steps, "peak_rss_mib": peak_rss_mib(), "mixed_precision": str(cfg.mixed_precision),
    }
    if cuda_peak is not None:
        result["peak_cuda_mib"] = cuda_peak
    return result


def bench(device: str = "cpu", batch_sizes: tuple[int, ...] = (1, 8), n_batches: int = 5, train_batch: int = 0,
          train_steps: int = 3, threads: int | None = None, compile_rows: bool = False) -> dict:
    """The full-size birds architecture (nf 64, ViT-B/32, 256 -> 224 px) with RANDOM weights: per batch size the
    text -> image pipeline's images/s and NetG's alone, then (``train_batch`` > 0; off by default) seconds per
    training step (AMP on CUDA as the paper configs, fp32 on CPU), then with ``compile_rows`` the text -> image rows
    again with NetG ``torch.compile``d (``sample.compile_generator``; the untimed warm-up batch compiles). Random
    weights give the same speed as trained ones; no files are read."""
    from common import distributed
    from common.data.clip_weights import VIT_B32, import_clip

    from .config import GALIPConfig
    from .sample import compile_generator
    from .train import Trainer

    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    config = GALIPConfig(device=device, mixed_precision=dev.type == "cuda")
    torch.manual_seed(0)
    clip_model = import_clip().model.CLIP(**VIT_B32).to(dev).eval()
    if dev.type == "cuda":
        import_clip().model.convert_weights(clip_model)  # fp16 as clip.load gives on a GPU
    trainer = Trainer(config, clip_model, distributed.Dist(0, 1, dev))
    netG = trainer.nets.netG.eval()  # noqa: N806
    text_to_image = [text_to_image_throughput(netG, trainer.nets.text_encoder, b, n_batches, 1, config.z_dim, dev)
                     for b in batch_sizes]
    sampling = [sampling_throughput(netG, b, n_batches, 1, config.cond_dim, config.z_dim, dev) for b in batch_sizes]
    training = training_step_time(trainer, train_batch, train_steps) if train_batch > 0 else None
    compiled = []
    if compile_rows:  # last: compile_generator changes netG in place, and the training step times the eager one
        compile_generator(netG)
        compiled = [text_to_image_throughput(netG, trainer.nets.text_encoder, b, n_batches, 1, config.z_dim, dev)
                    for b in batch_sizes]
    return {"device": str(dev), "threads": torch.get_num_threads(), "text_to_image": text_to_image,
            "sampling": sampling, "text_to_image_compiled": compiled, "training": training,
            "torch": torch.__version__}


def report(result: dict) -> str:
    """A readable table of :func:`bench`'s result."""
    lines = [f"galip bench: full-size birds architecture, RANDOM weights, {result['device']}, "
             f"{result['threads']} threads, torch {result['torch']}",
             "  row                                  batch  images/s  s/batch  peak RSS MiB"]
    rows = [("text -> images (tokenise, CLIP, NetG)", r) for r in result["text_to_image"]]
    rows += [("NetG.generate alone", r) for r in result["sampling"]]
    rows += [("text -> images, NetG torch.compile", r) for r in result.get("text_to_image_compiled", [])]
    for name, r in rows:
        lines.append(f"  {name:36s} {r['batch_size']:5d}  {r['images_per_s']:8.2f}  {r['s_per_batch']:7.3f}  "
                     f"{r['peak_rss_mib']:12.0f}" + (f"  (CUDA peak {r['peak_cuda_mib']:.0f} MiB)"
                                                    if "peak_cuda_mib" in r else ""))
    t = result["training"]
    if t:
        lines.append(f"training step (D + G, batch {t['batch_size']}, AMP {t['mixed_precision']}): "
                     f"{t['s_per_step']:.3f} s/step, {t['steps_per_s']:.2f} steps/s, "
                     f"peak RSS {t['peak_rss_mib']:.0f} MiB"
                     + (f", CUDA peak {t['peak_cuda_mib']:.0f} MiB" if "peak_cuda_mib" in t else ""))
    return "\n".join(lines)
