"""Human-readable outputs of a run: loss / MP / FID curves and the evaluation report (Markdown + JSON); the
plotting and report writing are GALIP's, with DE-Net's loss parts and metrics."""

from __future__ import annotations

from pathlib import Path

from galip import report as galip_report
from galip.report import read_metrics

__all__ = ["plot_losses", "read_metrics", "write_report"]


def plot_losses(run_dir: Path, label: str = "") -> Path:
    """``losses.png``: per-epoch D and G loss parts, and MP / FID at the test epochs."""
    return galip_report.plot_losses(run_dir, label, g_keys=("g_total", "g_adv", "g_damsm", "g_l1", "g_rec"),
                                    evals=(("mp", "MP"), ("fid", "FID")))


def write_report(path: Path, results: dict, label: str) -> Path:
    """``<path>.json`` and ``<path>.md`` with the evaluation numbers, labelled when synthetic / stand-in."""
    return galip_report.write_report(path, results, label, title="DE-Net evaluation")
