"""Shared fixtures: a RANDOM tiny SD-shaped backbone and SYNTHETIC stories, written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def _config(backbone, stories, runs, **overrides):
    values = dict(data=str(stories), pretrained=str(backbone), runs_dir=str(runs), run_name="r", epochs=1,
                  batch_size=4, log_every=2, sample_steps=3)
    values.update(overrides)
    return load_config(CONFIGS / "smoke.yaml", **values)


@pytest.fixture
def config(backbone, stories, tmp_path):
    return lambda **overrides: _config(backbone, stories, tmp_path / "runs", **overrides)


@pytest.fixture(scope="session")
def trained_run(backbone, stories, tmp_path_factory) -> Path:
    """One epoch of the smoke recipe on the fixture stories (shared by the CLI tests)."""
    from storyimager.train import train

    return train(_config(backbone, stories, tmp_path_factory.mktemp("runs"), run_name="shared"))
