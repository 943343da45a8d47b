"""The label every number printed from a run carries when its data or weights are not the paper's, so that no
number from an embedded default passes for a reproduction of the paper's tables."""

from __future__ import annotations


def data_banner(synthetic: bool) -> str:
    """The line a report opens with: what the numbers below were measured on."""
    return ("SYNTHETIC data (common.synthetic), not the paper's datasets: numbers are not comparable to the paper"
            if synthetic else "real data")


def run_label(synthetic: bool, stand_in: str = "") -> str:
    """`` [SYNTHETIC data, STAND-IN weights, not <stand_in>]`` (the parts that apply), appended to every printed
    number of such a run; '' for the paper's data and weights."""
    parts = (["SYNTHETIC data"] if synthetic else []) + ([f"STAND-IN weights, not {stand_in}"] if stand_in else [])
    return f" [{', '.join(parts)}]" if parts else ""
