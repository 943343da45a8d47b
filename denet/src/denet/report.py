"""Human-readable outputs of a DE-Net run: loss / MP / FID curves and the evaluation report (Markdown + JSON), drawn
by ``common.reports`` with DE-Net's loss parts and metrics."""

from __future__ import annotations

from pathlib import Path

from common import reports


def plot_losses(run_dir: Path, label: str = "") -> Path:
    """``losses.png``: per-epoch D and G loss parts, and MP / FID at the test epochs."""
    return reports.plot_losses(run_dir, label, ("d_total", "d_real", "d_mis", "d_fake", "d_gp"),
                               ("g_total", "g_adv", "g_damsm", "g_l1", "g_rec"), (("mp", "MP"), ("fid", "FID")))


def write_report(path: Path, results: dict, label: str) -> Path:
    """``<path>.json`` and ``<path>.md`` with the evaluation numbers, labelled when synthetic / stand-in."""
    return reports.write_report(path, results, label, title="DE-Net evaluation")
