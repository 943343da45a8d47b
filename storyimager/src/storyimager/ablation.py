"""The embedded default's evidence: the fine-tuned model beside its baselines, and the ablation table.

- Baselines: the same architecture untrained (``build_model`` on the same backbone folder: the stand-in VAE, the
  random UNet, StoryImager's parts at their initialisation), the fine-tuned model drawing each test story from
  another story's captions (visualization; ``evaluate``'s ``caption_shift``: what drawing sprites without reading
  the captions scores) and the real test frames (the classifier's ceiling), beside the fine-tuned model: Char-F1 /
  Frm-Acc of visualization and continuation, and each mode's agreement of frames 2..K with the real frame 1
  (``agreement``; visualization does not see frame 1).
- Ablations: the full model, FSCA off (stock cross-attention per frame), CFE off, and the ``inpainting`` input
  instead of ``masked_noise``, each fine-tuned with several seeds and evaluated like the full model; every cell is
  mean +- sd over the seeds.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path

from .config import StoryImagerConfig
from .data import story_dataset
from .evaluate import evaluate
from .train import build_model, load_trained, train

VARIANTS = {"full model": {}, "FSCA off (per-frame cross-attention)": {"fsca": False},
            "CFE off (no context tokens, no prior)": {"cfe": False},
            "inpainting input (not masked_noise)": {"mask_input": "inpainting"}}
MODES = ("visualize", "continue")
COLUMNS = (("visualize", "char_f1", "vis Char-F1"), ("visualize", "frame_acc", "vis Frm-Acc"),
           ("continue", "char_f1", "cont Char-F1"), ("continue", "frame_acc", "cont Frm-Acc"),
           ("continue", "char_agree", "cont char-agree"), ("visualize", "char_agree", "vis char-agree"),
           ("continue", "colour_agree", "cont colour-agree"), ("visualize", "colour_agree", "vis colour-agree"),
           ("visualize", "fsd", "vis FSD"))


def evaluate_modes(model, out_dir: Path) -> dict[str, dict]:
    """``evaluate`` in visualize and continue mode, without FID (random Inception here): {mode: results}."""
    return {mode: evaluate(model, out_dir / mode, mode, fid=False) for mode in MODES}


def baselines(config: StoryImagerConfig, run_dir: Path, trained: dict[str, dict]) -> dict[str, dict[str, dict]]:
    """{row: {mode: results}} for the untrained model, the fine-tuned one (``trained``) and the real frames."""
    untrained = evaluate_modes(build_model(config, config.device).eval(), run_dir / "eval_untrained")
    n = len(story_dataset(config, "test"))
    shift = min(n, config.eval_stories or n) // 2
    other = {"visualize": evaluate(load_trained(run_dir / "model.pt"), run_dir / "eval_other_captions", "visualize",
                                   fid=False, caption_shift=shift)}
    real = {mode: {key.removeprefix("real_"): value for key, value in results.items() if key.startswith("real_")}
            for mode, results in trained.items()}
    return {"untrained (same architecture, not fine-tuned)": untrained,
            f"fine-tuned, captions of story i + {shift} (control)": other, "fine-tuned": trained,
            "real test frames (ceiling)": real}


def ablations(config: StoryImagerConfig, run_dir: Path, seeds: list[int], epochs: int,
              reuse: dict[str, dict] | None = None) -> dict[str, list[dict[str, dict]]]:
    """{variant: [{mode: results} per seed]}; each run is ``<run_dir>-<variant>-seed<s>`` next to ``run_dir``.
    ``reuse`` = the full model's results at ``config.seed`` when ``epochs`` is the config's (not retrained)."""
    table = {}
    for name, switches in VARIANTS.items():
        table[name] = []
        for seed in seeds:
            if not switches and reuse is not None and seed == config.seed and epochs == config.epochs:
                table[name].append(reuse)
                continue
            tag = "-".join(f"{k}={v}" for k, v in switches.items()) or "full"
            cfg = dataclasses.replace(config, seed=seed, epochs=epochs, run_name=f"{run_dir.name}-{tag}-seed{seed}",
                                      **switches)
            run = train(cfg)
            table[name].append(evaluate_modes(load_trained(run / "model.pt"), run / "eval"))
    return table


def mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} +- {statistics.stdev(values):.3f}"


def _cells(runs: list[dict[str, dict]]) -> list[str]:
    return [mean_sd([r[mode][key] for r in runs]) if all(key in r.get(mode, {}) for r in runs) else "-"
            for mode, key, _ in COLUMNS]


def markdown_table(rows: dict[str, list[dict[str, dict]]], first: str) -> str:
    """One row per entry (mean +- sd over its list of runs), one column per ``COLUMNS`` entry."""
    header = [first] + [title for _, _, title in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([name] + _cells(runs)) + " |" for name, runs in rows.items()]
    return "\n".join(lines)


def report(config: StoryImagerConfig, run_dir: Path, results: dict[str, dict], seeds: list[int], epochs: int) -> dict:
    """Print the baseline table and the ablation table (``results``: the fine-tuned model's {mode: results});
    returns both as {row: ...} plus the ablations' wall time."""
    label = config.tag()
    rows = baselines(config, run_dir, results)
    print(f"\nfine-tuned vs baselines, test stories{label}:")
    print(markdown_table({name: [r] for name, r in rows.items()}, "model"))
    start = time.perf_counter()
    table = ablations(config, run_dir, seeds, epochs, reuse=results)
    minutes = (time.perf_counter() - start) / 60
    print(f"\nablations, mean +- sd over seeds {seeds}, {epochs} epochs each{label}:")
    print(markdown_table(table, "variant"))
    print(f"(ablation runs took {minutes:.1f} min)")
    return {"baselines": rows, "ablations": table, "ablation_minutes": minutes}
