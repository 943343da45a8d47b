"""CLIP score, VideoQA accuracy and the story character metrics on hand-computed cases."""

import math

import pytest
import torch

from common.metrics.clip_score import clip_cosines, clip_score
from common.metrics.story import (
    character_accuracy,
    character_f1,
    character_recall,
    frame_accuracy,
    predictions_from_logits,
)
from common.metrics.videoqa import videoqa_accuracy


def test_clip_score_is_raw_mean_cosine_without_scaling_or_clipping():
    img = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    txt = torch.tensor([[2.0, 0.0], [0.0, -1.0], [1.0, 0.0]])
    # cosines: 1, -1 (kept negative: no clip at 0), 1/sqrt(2)
    assert clip_cosines(img, txt).tolist() == pytest.approx([1.0, -1.0, 1 / math.sqrt(2)])
    assert clip_score(img, txt) == pytest.approx((1 - 1 + 1 / math.sqrt(2)) / 3)


def test_clip_score_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="equal shape"):
        clip_score(torch.zeros(3, 4), torch.zeros(2, 4))


def test_videoqa_accuracy_overall_and_per_type():
    pred = torch.tensor([1, 2, 3, 4, 5, 6])
    gold = torch.tensor([1, 0, 3, 4, 0, 1])
    types = torch.tensor([0, 0, 1, 1, 2, 2])
    acc = videoqa_accuracy(pred, gold, types, ["what", "who", "how", "when", "where"])
    assert acc == {"overall": pytest.approx(0.5), "what": 0.5, "who": 1.0, "how": 0.0}


def test_videoqa_accuracy_without_types_and_with_numeric_types():
    assert videoqa_accuracy(torch.tensor([1, 1]), torch.tensor([1, 0])) == {"overall": 0.5}
    acc = videoqa_accuracy(torch.tensor([1, 1]), torch.tensor([1, 0]), torch.tensor([0, 3]))
    assert acc == {"overall": 0.5, "0": 1.0, "3": 0.0}


def test_character_metrics_hand_computed():
    target = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    pred = torch.tensor([[1, 0, 1], [1, 1, 0], [1, 0, 0], [0, 0, 0]])
    # TP = 2 + 1 + 1 = 4, FP = 1, FN = 1
    assert character_f1(pred, target) == pytest.approx(8 / 10)
    assert frame_accuracy(pred, target) == pytest.approx(2 / 4)
    assert character_accuracy(pred, target) == pytest.approx(10 / 12)
    assert character_recall(pred, target) == pytest.approx(4 / 5)


def test_character_predictions_round_the_sigmoid():
    logits = torch.tensor([[2.0, -0.1, 0.0, 0.3]])
    assert predictions_from_logits(logits).tolist() == [[True, False, False, True]]


def test_character_f1_matches_sklearn_style_micro_average_on_random_data():
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(50, 9, generator=g) > 0.5
    target = torch.rand(50, 9, generator=g) > 0.6
    tp = sum(int(p and t) for p, t in zip(pred.flatten().tolist(), target.flatten().tolist()))
    precision, recall = tp / int(pred.sum()), tp / int(target.sum())
    assert character_f1(pred, target) == pytest.approx(2 * precision * recall / (precision + recall))
