"""Seeding repeats draws, and a checkpoint's RNG state restores every generator a run draws from."""

import random

import numpy as np
import torch

from common.rng import rng_state, set_rng_state, set_seed


def _draw() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_set_seed_makes_python_numpy_and_torch_draws_repeat():
    set_seed(3)
    first = _draw()
    set_seed(3)
    assert _draw() == first


def test_rng_state_round_trip_restores_python_numpy_and_torch():
    state = rng_state()
    first = _draw()
    assert _draw() != first  # the generators moved on
    set_rng_state(state)
    assert _draw() == first
    assert ("cuda" in state) == torch.cuda.is_available()  # every GPU's generator, when there are GPUs
