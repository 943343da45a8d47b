"""Shared fixtures: SYNTHETIC shapes data (256 px scenes) and RANDOM weight files (DAMSM, Inception), written once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.dfgan_fid import real_statistics
from common.metrics.fid import write_random_torchvision_inception_weights
from common.synthetic import text_image
from denet.config import DENetConfig, load_config
from denet.damsm import write_random_damsm

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="session")
def assets(tmp_path_factory) -> dict[str, Path]:
    from common.data.text_image import DAMSM_PICKLE, load_damsm_captions

    root = tmp_path_factory.mktemp("denet_assets")
    data = text_image.write(root / "shapes", seed=0, image_size=256, n_train=16, n_test=8)
    n_words = len(load_damsm_captions(data / DAMSM_PICKLE).ixtoword)
    text, image = write_random_damsm(root, n_words)
    inception = write_random_torchvision_inception_weights(root / "inception.pth", seed=0)
    assets = {"data": data, "text": text, "image": image, "inception": inception, "root": root,
              "stats": root / "stats.npz"}
    real_statistics(tiny_config(assets, root), assets["stats"])
    return assets


def tiny_config(assets: dict[str, Path], tmp_path: Path, **overrides) -> DENetConfig:
    """smoke.yaml on the session's small synthetic set with random DAMSM (nf 4, batch 4, 96 px DAMSM input) and
    no DAMSM term in the G loss (fast; the tests that need the term set ``damsm_w``)."""
    values = dict(data=str(assets["data"]), text_encoder=str(assets["text"]), image_encoder=str(assets["image"]),
                  inception_weights=str(assets["inception"]), fid_weights=str(assets["inception"]),
                  fid_stats=str(assets["stats"]), runs_dir=str(tmp_path / "runs"), nf=4, batch_size=4, epochs=1,
                  eval_batch_size=4, damsm_input_size=96, n_preview=4, damsm_batch_size=8, damsm_w=0.0, l1_w=2.0)
    values.update(overrides)
    return load_config(CONFIGS / "smoke.yaml", **values)


def fid_without_sqrtm_value(mu1, sigma1, mu2, sigma2) -> float:
    """The Frechet distance without its matrix square root: ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2)."""
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2))


@pytest.fixture
def fid_without_sqrtm(monkeypatch):
    """For tests of training mechanics (determinism, resume, run folders, reports), not of the metric: the
    evaluation's Frechet distance loses its matrix square root, a 2048 x 2048 ``sqrtm`` that costs ~16 s per call on
    the 2-core CI machine (pytorch-fid's algorithm, checked against pytorch-fid in common/tests/test_fid.py).
    Everything else the evaluation does still runs."""
    monkeypatch.setattr("denet.evaluate.frechet_distance", fid_without_sqrtm_value)
