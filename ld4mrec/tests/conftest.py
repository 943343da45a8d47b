"""Small SYNTHETIC MMRec datasets written by common.synthetic."""

import pytest

from common.synthetic import mmrec as synthetic_mmrec


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    return synthetic_mmrec.write(tmp_path_factory.mktemp("data") / "tiny", seed=1, n_users=150, n_items=90,
                                 image_dim=48, text_dim=24)


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory):
    return synthetic_mmrec.write(tmp_path_factory.mktemp("data") / "smoke", seed=0)
