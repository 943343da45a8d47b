"""A checkpoint's RNG state restores every generator a run draws from; a bad checkpoint file is one line."""

import random

import numpy as np
import pytest
import torch

from common.checkpoints import read_checkpoint, rng_state, set_rng_state
from common.errors import DataFormatError

CPU = torch.device("cpu")


def _draw() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_rng_state_round_trip_restores_python_numpy_and_torch():
    state = rng_state(CPU)
    first = _draw()
    assert _draw() != first  # the generators moved on
    set_rng_state(state, CPU)
    assert _draw() == first
    assert "cuda" not in state  # a CPU run carries no CUDA state


def test_read_checkpoint_errors_are_one_line(tmp_path):
    with pytest.raises(DataFormatError, match="checkpoint not found"):
        read_checkpoint(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DataFormatError) as err:
        read_checkpoint(bad)
    assert "bad.pt" in str(err.value) and len(str(err.value).splitlines()) == 1
