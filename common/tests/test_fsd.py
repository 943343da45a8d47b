"""Fréchet Story Distance: clip layout, the network's output, the distance, and its one-line errors."""

import numpy as np
import pytest
import torch

from common.errors import DataFormatError, WeightsNotFoundError
from common.metrics.fid import frechet_distance, statistics
from common.metrics.fsd import load_r2plus1d, story_clips, story_features, write_random_r2plus1d_weights


def test_clips_are_channel_first_in_unit_range_at_64_px():
    stories = torch.randint(0, 256, (2, 5, 3, 32, 32), dtype=torch.uint8)
    clips = story_clips(stories)
    assert clips.shape == (2, 3, 5, 64, 64) and 0 <= clips.min() and clips.max() <= 1
    flat = torch.full((1, 5, 3, 8, 8), 255, dtype=torch.uint8)
    assert torch.all(story_clips(flat) == 1)
    with pytest.raises(ValueError):
        story_clips(stories.float())


def test_features_and_distance():
    torch.manual_seed(0)
    net = load_r2plus1d(None)
    stories = torch.randint(0, 256, (6, 5, 3, 16, 16), dtype=torch.uint8)
    feats = story_features(net, stories, batch=4)
    assert feats.shape == (6, 512)
    assert np.allclose(feats[:2], story_features(net, stories[:2]), atol=1e-5)
    assert abs(frechet_distance(*statistics(feats), *statistics(feats))) < 1e-6
    other = story_features(net, 255 - stories)
    assert frechet_distance(*statistics(feats), *statistics(other)) > 0


def test_weight_file_errors(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="r2plus1d_18-91a641e6.pth"):
        load_r2plus1d(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, bad)
    with pytest.raises(DataFormatError, match="bad.pth"):
        load_r2plus1d(bad)
    good = write_random_r2plus1d_weights(tmp_path / "good.pth")  # the Kinetics file's key layout, fc included
    assert isinstance(load_r2plus1d(good).fc, torch.nn.Identity)
