"""Human-readable outputs of a GAN run: image grids, the loss and evaluation curves (``losses.png``) and the
evaluation report (Markdown + JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from common.run_folder import read_metrics  # noqa: E402


def plot_losses(run_dir: Path, label: str, d_keys: tuple[str, ...], g_keys: tuple[str, ...],
                evals: tuple[tuple[str, str], tuple[str, str]]) -> Path:
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


def write_report(path: Path, results: dict, label: str, title: str) -> Path:
    """``<path>.json`` and ``<path>.md`` with the evaluation numbers, labelled when synthetic / random-weight."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps({**results, "label": label.strip(" []")}, indent=1))
    lines = [f"# {title}{label}", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in results.items()]
    if label:
        lines += ["", f"Labelled {label.strip()}: not comparable to the paper's numbers."]
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return path.with_suffix(".md")


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 8) -> Path:
    """Images in [-1, 1] (clamped) -> one PNG grid, as the official notebook writes it."""
    from torchvision.utils import save_image  # imported here: only the image projects install torchvision

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(images.float().cpu(), path, nrow=nrow, normalize=True, value_range=(-1, 1))
    return path


def write_run_report(run_dir: Path, summary: dict, table: str) -> dict:
    """``run_dir/summary.json`` and ``run_dir/results.md``; returns the summary plus the printable table."""
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    (run_dir / "results.md").write_text(table + "\n")
    return {**summary, "table": table + f"\n\nrun directory: {run_dir}"}
