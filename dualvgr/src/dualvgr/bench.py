"""``dualvgr bench``: training-step time and peak memory of the full DualVGR at a config's shapes.

Inputs are random tensors of the config's shapes (B x clips x 16 x 2048 appearance, B x clips x 2048 motion,
questions of ``question_len`` tokens from a ``vocab``-word vocabulary, ``answers`` classes); a step is forward,
the full loss (CE + consistency + HSIC), backward, gradient clipping and the Adam update. The first step is a
warm-up and is not timed. ``--lstm fused`` runs the appearance BiLSTM through ``bilstm.bilstm_final_states``
instead of ``nn.LSTM``'s kernel (same weights, same function) for a same-machine comparison. It prints only what
it timed in this run: a comparison with the official code needs both timed in one interleaved run (the README's
recipe), since this machine's speed varies by up to 2x from day to day.
"""

from __future__ import annotations

import resource
import statistics
import time

import torch

from dualvgr.config import DualVGRConfig
from dualvgr.losses import dualvgr_loss
from dualvgr.model import DualVGR, count_parameters


def peak_memory_mib(device: torch.device) -> float:
    """Peak CUDA memory allocated (GPU) or this process's peak resident set size (CPU), MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(config: DualVGRConfig, batch_size: int, steps: int = 3, vocab: int = 8000, answers: int = 4002,
          question_len: int = 20, lstm: str = "nn", seed: int = 0) -> dict:
    torch.manual_seed(seed)
    device = torch.device(config.device)
    model = DualVGR(vocab, answers, config.unit_layers, config.vision_dim, config.module_dim, config.word_dim)
    model.appearance_encoder.lstm_path = lstm
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)
    gen = torch.Generator().manual_seed(seed)
    b, n = batch_size, config.num_clips
    batch = {"appearance": torch.randn(b, n, 16, config.vision_dim, generator=gen),
             "motion": torch.randn(b, n, config.vision_dim, generator=gen),
             "question": torch.randint(2, vocab, (b, question_len), generator=gen),
             "question_len": torch.randint(3, question_len + 1, (b,), generator=gen),
             "answer": torch.randint(0, answers, (b,), generator=gen)}
    batch = {k: v.to(device) for k, v in batch.items()}
    times = []
    for _ in range(steps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        logits, trace = model(batch["appearance"], batch["motion"], batch["question"], batch["question_len"])
        loss, _ = dualvgr_loss(logits, batch["answer"], trace, config.alpha, config.beta)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return {"device": str(device), "threads": torch.get_num_threads(), "batch_size": b, "clips": n,
            "units": config.unit_layers, "lstm": lstm, "parameters": sum(p.numel() for p in model.parameters()),
            "parameters_excluding_embedding_and_classifier": count_parameters(model),
            "step_s": statistics.median(times[1:]), "steps": times[1:],
            "questions_per_s": b / statistics.median(times[1:]), "peak_memory_mib": peak_memory_mib(device)}


def report(result: dict) -> str:
    lines = [f"DualVGR training step ({result['units']} units, {result['clips']} clips, batch {result['batch_size']}, "
             f"{result['device']}, {result['threads']} threads, appearance LSTM: {result['lstm']}; random inputs)",
             f"  parameters {result['parameters']:,} ({result['parameters_excluding_embedding_and_classifier']:,} "
             f"without embedding and classifier)",
             f"  step {result['step_s']:.3f} s (median of {len(result['steps'])}), "
             f"{result['questions_per_s']:.1f} questions/s, peak memory {result['peak_memory_mib']:.0f} MiB"]
    return "\n".join(lines)
