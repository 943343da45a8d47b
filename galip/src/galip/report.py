"""Human-readable outputs of a run: the loss/FID curves and the evaluation report (Markdown + JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def plot_losses(run_dir: Path, label: str = "",
                d_keys: tuple[str, ...] = ("d_total", "d_real", "d_mis", "d_fake", "d_gp"),
                g_keys: tuple[str, ...] = ("g_total", "g_adv", "g_sim"),
                evals: tuple[tuple[str, str], ...] = (("fid", "FID"), ("clip_score", "CLIP score"))) -> Path:
    """``losses.png``: per-epoch D and G loss parts (``d_keys``, ``g_keys``), and the two evaluation numbers
    ``evals`` ((key, name) pairs; the second on a twin axis) at the test epochs."""
    records = read_metrics(run_dir)
    epochs = [r["epoch"] for r in records]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for key in d_keys:
        axes[0].plot(epochs, [r["loss"][key] for r in records], label=key)
    for key in g_keys:
        axes[1].plot(epochs, [r["loss"][key] for r in records], label=key)
    tested = [r for r in records if "eval" in r]
    if tested:
        (k1, n1), (k2, n2) = evals
        axes[2].plot([r["epoch"] for r in tested], [r["eval"][k1] for r in tested], "o-", label=n1)
        twin = axes[2].twinx()
        twin.plot([r["epoch"] for r in tested], [r["eval"][k2] for r in tested], "s--", color="C1", label=n2)
        twin.set_ylabel(n2)
    for ax, title in zip(axes, ("discriminator", "generator", "evaluation")):
        ax.set_title(title + label)
        ax.set_xlabel("epoch")
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    out = Path(run_dir) / "losses.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def write_report(path: Path, results: dict, label: str, title: str = "GALIP evaluation") -> Path:
    """``<path>.json`` and ``<path>.md`` with the evaluation numbers, labelled when synthetic / random-weight."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps({**results, "label": label.strip(" []")}, indent=1))
    lines = [f"# {title}{label}", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in results.items()]
    if label:
        lines += ["", f"Labelled {label.strip()}: not comparable to the paper's numbers."]
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return path.with_suffix(".md")
