"""Shared fixtures: small SYNTHETIC MMRec datasets written by common.synthetic."""

import pytest

from common.synthetic import mmrec as synthetic_mmrec


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """200 users x 120 items, small features: for unit, resume and CLI tests."""
    return synthetic_mmrec.write(tmp_path_factory.mktemp("data") / "tiny", seed=1, n_users=200, n_items=120,
                                 image_dim=64, text_dim=32)


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory):
    """The embedded default's data (600 users x 400 items, 4096/384-d features)."""
    return synthetic_mmrec.write(tmp_path_factory.mktemp("data") / "smoke", seed=0)
