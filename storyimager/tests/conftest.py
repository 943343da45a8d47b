"""Shared fixtures: a RANDOM tiny SD-shaped backbone and SYNTHETIC stories, written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.metrics.fid import write_random_fid_weights
from common.synthetic import story as synthetic_story
from storyimager.backbone import synthetic_words, write_tiny_backbone
from storyimager.config import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="session")
def backbone(tmp_path_factory) -> Path:
    return write_tiny_backbone(tmp_path_factory.mktemp("tiny-sd"), synthetic_words(), seed=0)


@pytest.fixture(scope="session")
def stories(tmp_path_factory) -> Path:
    return synthetic_story.write(tmp_path_factory.mktemp("stories"), seed=0, n_episodes=24, size=16)


@pytest.fixture(scope="session")
def fid_weights(tmp_path_factory) -> Path:
    """RANDOM weights of the FID Inception: training's preflight wants every file evaluation will load."""
    return write_random_fid_weights(tmp_path_factory.mktemp("fid") / "fid.pth")


def _config(backbone, stories, fid, runs, **overrides):
    values = dict(data=str(stories), pretrained=str(backbone), runs_dir=str(runs), run_name="r", epochs=1,
                  batch_size=4, log_every=2, sample_steps=3, fid_weights=str(fid))
    values.update(overrides)
    config = load_config(CONFIGS / "smoke.yaml", **values)
    config.classifier, config.fsd_weights = overrides.get("classifier"), overrides.get("fsd_weights")  # None: unused
    return config


@pytest.fixture
def config(backbone, stories, fid_weights, tmp_path):
    """The smoke config on the fixture backbone and stories; evaluation: FID only (overrides add the rest)."""
    return lambda **overrides: _config(backbone, stories, fid_weights, tmp_path / "runs", **overrides)


@pytest.fixture(scope="session")
def trained_run(backbone, stories, fid_weights, tmp_path_factory) -> Path:
    """One epoch of the smoke recipe on the fixture stories (shared by the CLI tests)."""
    from storyimager.train import train

    return train(_config(backbone, stories, fid_weights, tmp_path_factory.mktemp("runs"), run_name="shared"))
