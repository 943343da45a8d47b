"""Character metrics of story visualisation (``adymaharana/storydalle:story-dalle/eval_char_clf.py``).

A character classifier predicts, for every generated frame, a multi-hot vector over the dataset's
C characters (prediction = round(sigmoid(logit)), i.e. logit > 0). With P, T the predicted and true
[frames, C] binary matrices:

- Char-F1 (micro) = 2 TP / (2 TP + FP + FN), counted over all (frame, character) pairs
  (sklearn ``classification_report`` micro average).
- Frm-Acc = fraction of frames whose whole C-vector is predicted exactly.
- Char-Acc here is the per-label accuracy over frames x C (the script's "Acc"); papers also use
  the recall of present characters under that name, which ``character_recall`` gives.
"""

from __future__ import annotations

import torch


def _binary(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.shape != target.shape or pred.ndim != 2:
        raise ValueError(f"expected two [frames, C] matrices of equal shape, got {pred.shape} and {target.shape}")
    return pred.bool(), target.bool()


def predictions_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """round(sigmoid(logit)) as the evaluation script does (ties at 0.5 round down to 0, as torch.round)."""
    return torch.round(torch.sigmoid(logits)).bool()


def character_f1(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Micro-averaged F1 over all (frame, character) pairs; 0 when nothing is present or predicted."""
    p, t = _binary(pred, target)
    tp = (p & t).sum().item()
    fp = (p & ~t).sum().item()
    fn = (~p & t).sum().item()
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def frame_accuracy(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of frames whose predicted character vector equals the true one exactly."""
    p, t = _binary(pred, target)
    return float((p == t).all(dim=1).double().mean())


def character_accuracy(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Per-label accuracy over all frames x C entries."""
    p, t = _binary(pred, target)
    return float((p == t).double().mean())


def character_recall(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of present (frame, character) pairs that are predicted."""
    p, t = _binary(pred, target)
    return float((p & t).sum() / t.sum().clamp(min=1))
