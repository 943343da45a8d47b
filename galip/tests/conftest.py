"""Shared fixtures: SYNTHETIC shapes data and RANDOM weight files (tiny CLIP, Inception), written once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.data.clip_weights import write_random_clip
from common.dfgan_fid import real_statistics
from common.metrics.fid import write_random_torchvision_inception_weights
from common.synthetic import text_image
from galip.config import GALIPConfig, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="session")
def assets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("galip_assets")
    data = text_image.write(root / "shapes", seed=0, image_size=64, n_train=64, n_test=16)
    clip = write_random_clip(root / "tiny-ViT-B-32.pt", seed=0, tiny=True)
    inception = write_random_torchvision_inception_weights(root / "inception.pth", seed=0)
    return {"data": data, "clip": clip, "inception": inception, "root": root}


def tiny_config(assets: dict[str, Path], tmp_path: Path, **overrides) -> GALIPConfig:
    """smoke.yaml on the session's small synthetic set, shrunk further (nf 8, 32 px) for fast tests."""
    values = dict(data=str(assets["data"]), clip_weights=str(assets["clip"]), fid_weights=str(assets["inception"]),
                  fid_stats=str(assets["root"] / "stats.npz"), runs_dir=str(tmp_path / "runs"), nf=8, imsize=32,
                  out_size=32, batch_size=8, epochs=1, eval_batch_size=8)
    values.update(overrides)
    return load_config(CONFIGS / "smoke.yaml", **values)


@pytest.fixture(scope="session")
def clip_model():
    """A RANDOM full-size ViT-B/32 ``clip.model.CLIP`` (GALIP hard-codes its 768/512 widths)."""
    import torch

    from common.data.clip_weights import VIT_B32, import_clip

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return import_clip().model.CLIP(**VIT_B32).float().eval()


@pytest.fixture(scope="session")
def fid_stats(assets) -> Path:
    path = assets["root"] / "stats.npz"
    if not path.is_file():
        real_statistics(tiny_config(assets, assets["root"]), path)
    return path


def fid_without_sqrtm_value(mu1, sigma1, mu2, sigma2) -> float:
    """The Frechet distance without its matrix square root: ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2)."""
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2))


@pytest.fixture
def fid_without_sqrtm(monkeypatch):
    """For tests of training mechanics (determinism, resume, run folders, sample counts), not of the metric: the
    evaluation's Frechet distance loses its matrix square root, a 2048 x 2048 ``sqrtm`` that costs ~16 s per call on
    the 2-core CI machine (pytorch-fid's algorithm, checked against pytorch-fid in common/tests/test_fid.py).
    Everything else the evaluation does still runs: sampling, Inception features, CLIP score, the colour check and
    the RNG fork."""
    monkeypatch.setattr("galip.evaluate.frechet_distance", fid_without_sqrtm_value)
