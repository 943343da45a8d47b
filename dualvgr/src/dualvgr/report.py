"""Results tables in the paper's layout (accuracy in % per question type, then all) and the majority baseline."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from common.data.videoqa import VideoQADataset
from common.labels import data_banner
from common.metrics.videoqa import videoqa_accuracy


def majority_baseline(train_answers: np.ndarray, dataset: VideoQADataset) -> dict[str, float]:
    """Accuracy of always answering the most frequent train answer, overall and per type."""
    majority = int(np.bincount(train_answers).argmax())
    return videoqa_accuracy(torch.full((len(dataset),), majority), torch.from_numpy(dataset.answers),
                            torch.from_numpy(dataset.question_types), dataset.type_names)


def results_table(config, title: str, rows: Sequence[tuple[str, dict]], type_names: Sequence[str]) -> str:
    """Markdown table: one column per question type present in any row, then all (%)."""
    names = [n for n in type_names if any(n in row for _, row in rows)]

    def cells(row: dict) -> str:
        return " | ".join(f"{100 * row[n]:.2f}" if n in row else "-" for n in [*names, "overall"])

    head = (f"{config.tag()}DualVGR, {config.dataset}, {config.unit_layers} unit(s), {title} — "
            f"{data_banner(config.synthetic)}")
    return "\n".join([head, "", "| | " + " | ".join([*names, "all"]) + " |", "|---" * (len(names) + 2) + "|",
                      *(f"| {label} | {cells(row)} |" for label, row in rows)])
