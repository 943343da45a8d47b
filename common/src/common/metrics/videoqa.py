"""Open-ended VideoQA accuracy, overall and per question type (HCRN / DualVGR ``validate.py``).

Accuracy = fraction of questions whose predicted answer index equals the ground-truth index.
Ground-truth answers outside the answer vocabulary are kept, as in HCRN and DualVGR: their index is
``<UNK1>`` (1) at val/test while training maps them to ``<UNK0>`` (0), so they are in effect wrong.
Question types are the first question word for MSVD-QA / MSRVTT-QA (what, who, how, when, where)
and the 15 program categories for SVQA.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def videoqa_accuracy(
    predictions: torch.Tensor,
    answers: torch.Tensor,
    question_types: torch.Tensor | None = None,
    type_names: Sequence[str] | None = None,
) -> dict[str, float]:
    """``{"overall": acc, "<type>": acc, ...}``; types with no question are left out."""
    predictions, answers = predictions.reshape(-1), answers.reshape(-1)
    if predictions.shape != answers.shape or predictions.numel() == 0:
        raise ValueError(f"need equal, non-empty predictions and answers, got {predictions.shape}, {answers.shape}")
    correct = (predictions == answers).double()
    out = {"overall": float(correct.mean())}
    if question_types is None:
        return out
    types = question_types.reshape(-1).long()
    if types.shape != correct.shape:
        raise ValueError(f"question_types has {types.numel()} entries for {correct.numel()} questions")
    n_types = len(type_names) if type_names is not None else int(types.max()) + 1
    counts = torch.bincount(types, minlength=n_types).double()
    hits = torch.bincount(types, weights=correct, minlength=n_types)
    names = list(type_names) if type_names is not None else [str(t) for t in range(n_types)]
    for t, name in enumerate(names):
        if counts[t] > 0:
            out[name] = float(hits[t] / counts[t])
    return out
