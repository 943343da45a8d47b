"""Human-readable outputs of a run: loss / MP / FID curves and the evaluation report (Markdown + JSON)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from galip.report import read_metrics, write_report  # noqa: E402

__all__ = ["plot_losses", "read_metrics", "write_report"]


def plot_losses(run_dir: Path, label: str = "") -> Path:
    """``losses.png``: per-epoch D and G loss parts, and MP / FID at the test epochs."""
    records = read_metrics(run_dir)
    epochs = [r["epoch"] for r in records]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for key in ("d_total", "d_real", "d_mis", "d_fake", "d_gp"):
        axes[0].plot(epochs, [r["loss"][key] for r in records], label=key)
    for key in ("g_total", "g_adv", "g_damsm", "g_l1"):
        axes[1].plot(epochs, [r["loss"][key] for r in records], label=key)
    evals = [r for r in records if "eval" in r]
    if evals:
        axes[2].plot([r["epoch"] for r in evals], [r["eval"]["mp"] for r in evals], "o-", label="MP")
        twin = axes[2].twinx()
        twin.plot([r["epoch"] for r in evals], [r["eval"]["fid"] for r in evals], "s--", color="C1", label="FID")
        twin.set_ylabel("FID")
    for ax, title in zip(axes, ("discriminator", "generator", "evaluation")):
        ax.set_title(title + label)
        ax.set_xlabel("epoch")
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    out = Path(run_dir) / "losses.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
