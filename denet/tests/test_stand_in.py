"""The embedded default's stand-in Inception trunk (SYNTHETIC data): file layout and loading path."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config

from common.errors import DataFormatError
from common.io import read_state_dict
from common.metrics.fid import load_torchvision_inception
from denet.damsm import CNN_ENCODER
from denet.stand_in import train_stand_in_inception


def test_stand_in_file_is_a_torchvision_inception_that_the_damsm_loads(assets, tmp_path):
    config = tiny_config(assets, tmp_path, damsm_input_size=80, damsm_batch_size=8)
    out = train_stand_in_inception(config, tmp_path / "stand_in.pth", epochs=1)
    load_torchvision_inception(out)  # strict: the key layout of the ImageNet file
    state, random = read_state_dict(out), read_state_dict(assets["inception"])
    assert set(random) <= set(state)
    assert not torch.equal(state["Mixed_7c.branch_pool.conv.weight"], random["Mixed_7c.branch_pool.conv.weight"])
    encoder = CNN_ENCODER(inception_weights=out, input_size=80)
    trunk = encoder.state_dict()
    assert torch.equal(trunk["Conv2d_1a_3x3.conv.weight"], state["Conv2d_1a_3x3.conv.weight"])
    assert not any(p.requires_grad for name, p in encoder.named_parameters() if not name.startswith("emb_"))
    assert not list(tmp_path.glob("*.random.pth"))


def test_stand_in_needs_cub_classes(assets, tmp_path):
    config = tiny_config(assets, tmp_path, dataset="coco")
    with pytest.raises(DataFormatError, match="CUB classes"):
        train_stand_in_inception(config, tmp_path / "stand_in.pth", epochs=1)
