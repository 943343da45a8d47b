"""Tiny SYNTHETIC VideoQA data (common.synthetic.videoqa) and a narrow config for fast CPU tests."""

import pytest

from common.synthetic import videoqa as synthetic_videoqa
from dualvgr.config import load_config

TINY = {"n_videos": 40, "num_clips": 3, "feature_dim": 48}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    return synthetic_videoqa.write(tmp_path_factory.mktemp("videoqa"), seed=1, dataset="msvd-qa", **TINY)


@pytest.fixture(scope="session")
def tiny_svqa(tmp_path_factory):
    return synthetic_videoqa.write(tmp_path_factory.mktemp("svqa"), seed=2, dataset="svqa", **TINY)


@pytest.fixture
def config(tiny_data, tmp_path):
    """A narrow DualVGR on the tiny data; keyword overrides as in the YAML."""
    def make(**overrides):
        values = {"dataset": "msvd-qa", "data": str(tiny_data), "synthetic": True, "num_clips": 3, "vision_dim": 48,
                  "module_dim": 32, "in_memory": True, "num_workers": 0, "batch_size": 16, "eval_batch_size": 64,
                  "epochs": 2, "lr": 1e-3, "runs_dir": str(tmp_path / "runs"), "run_name": "run", **overrides}
        return load_config(None, **values)
    return make
