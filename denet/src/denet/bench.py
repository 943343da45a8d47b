"""``denet bench``: edits/s of the paper-size editor (nf 32, 256 px) and the time of one training step, with
random weights (G/D and a random DAMSM with a random Inception trunk; timings do not depend on the values).
"""

from __future__ import annotations

import tempfile

import torch

from common.distributed import Dist
from common.timing import peak_rss_mib, timed

from .config import DENetConfig
from .damsm import write_random_damsm
from .models import NetG

VOCAB = 27_297  # COCO's DAMSM vocabulary (spec 1.2)


def edit_throughput(netG: NetG, batch_size: int, n_batches: int, device: torch.device) -> dict:  # noqa: N803
    """Edits/s of ``netG`` in eval mode under ``torch.inference_mode`` at 256 px."""
    gen = torch.Generator().manual_seed(0)
    images = (torch.rand(batch_size, 3, 256, 256, generator=gen) * 2 - 1).to(device)
    sent = torch.randn(batch_size, 256, generator=gen).to(device)
    netG.eval()

    def run() -> None:
        with torch.inference_mode():
            netG(images, sent)

    times, cuda_peak = timed(run, n_batches, 1, device)
    mean = sum(times) / len(times)
    return {"batch_size": batch_size, "s_per_batch": mean, "edits_per_s": batch_size / mean, "cuda_peak_mib": cuda_peak}


def train_step_time(device: torch.device, batch_size: int, n_steps: int) -> dict:
    """Seconds per DE-Net training step (D step + G step with the DAMSM and reconstruction terms) at nf 32."""
    from .train import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        text, image = write_random_damsm(tmp, VOCAB)
        config = DENetConfig(text_encoder=str(text), image_encoder=str(image), device=str(device),
                             batch_size=batch_size)
        trainer = Trainer(config, Dist(0, 1, device), vocab_size=VOCAB)  # no dataset needed for a timing
    trainer.train_mode()
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(batch_size, 3, 256, 256, generator=gen) * 2 - 1
    tokens = torch.randint(1, VOCAB, (batch_size, 18), generator=gen)
    lengths = torch.randint(5, 19, (batch_size,), generator=gen)
    times, cuda_peak = timed(lambda: trainer.step(images, tokens, lengths), n_steps, 1, device)
    return {"batch_size": batch_size, "s_per_step": sum(times) / len(times), "cuda_peak_mib": cuda_peak}


def bench(device: str = "cpu", batch_sizes: tuple[int, ...] = (1, 8), n_batches: int = 3, train_batch: int = 4,
          train_steps: int = 2, threads: int | None = None) -> dict:
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    torch.manual_seed(0)
    netG = NetG(32).to(dev)  # noqa: N806
    result = {"device": str(dev), "threads": torch.get_num_threads(), "nf": 32, "imsize": 256,
              "edit": [edit_throughput(netG, b, n_batches, dev) for b in batch_sizes]}
    if train_batch:
        result["train"] = train_step_time(dev, train_batch, train_steps)
    result["peak_rss_mib"] = peak_rss_mib()
    return result


def report(result: dict) -> str:
    lines = [f"DE-Net bench on {result['device']} ({result['threads']} threads), nf {result['nf']}, "
             f"{result['imsize']} px, random weights"]
    for e in result["edit"]:
        mem = f", CUDA peak {e['cuda_peak_mib']:.0f} MiB" if e["cuda_peak_mib"] is not None else ""
        lines.append(f"  edit batch {e['batch_size']}: {e['edits_per_s']:.2f} edits/s "
                     f"({e['s_per_batch']:.3f} s per batch{mem})")
    if "train" in result:
        t = result["train"]
        mem = f", CUDA peak {t['cuda_peak_mib']:.0f} MiB" if t["cuda_peak_mib"] is not None else ""
        lines.append(f"  training step batch {t['batch_size']}: {t['s_per_step']:.2f} s{mem}")
    lines.append(f"  peak RSS {result['peak_rss_mib']:.0f} MiB")
    return "\n".join(lines)
