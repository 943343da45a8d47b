"""The synthetic MMRec variant with BeFA's two feature defects: information drift and information omission."""

import numpy as np
import pytest

from common.data.mmrec import load_mmrec
from common.synthetic import mmrec as writer
from common.synthetic.__main__ import main as synthetic_cli

DRIFT = dict(drift_dims=8, drift_scale=3.0, omit_fraction=0.25)
SIZES = dict(n_users=300, n_items=1000, image_dim=256, text_dim=64)


@pytest.fixture(scope="module")
def drifted():
    return writer.generate(seed=4, **SIZES, **DRIFT)


def r_squared(targets, regressors):
    """R^2 of the least-squares fit of each target column on the regressors (with an intercept)."""
    x = np.c_[np.ones(len(regressors)), regressors]
    coef, *_ = np.linalg.lstsq(x, targets, rcond=None)
    return 1 - (targets - x @ coef).var(0) / targets.var(0)


def principal_scores(features):
    centred = features.astype(np.float64) - features.mean(0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    return u, s**2 / (s**2).sum()


@pytest.mark.parametrize("fname", writer.FEATURE_FILES)
def test_drift_directions_dominate_feature_variance_and_carry_no_preference_signal(drifted, fname):
    scores, explained = principal_scores(drifted.features[fname])
    top = scores[:, :8]  # as many leading directions as drift factors
    assert explained[:8].sum() > 0.8  # the drift dominates the vector
    assert (r_squared(drifted.drift_factors[fname], top) > 0.9).all()  # ... and those directions are the drift
    assert (r_squared(drifted.item_factors, top) < 0.06).all()  # chance level is 8 / 1000
    corr = np.corrcoef(np.c_[drifted.item_factors, drifted.drift_factors[fname]].T)[:8, 8:]
    assert np.abs(corr).max() < 0.15  # independent of the preference factors (about 1 / sqrt(1000) each)


@pytest.mark.parametrize("fname", writer.FEATURE_FILES)
def test_omitted_factors_are_absent_from_features_while_kept_ones_are_recoverable(drifted, fname):
    assert drifted.omitted.tolist() == [6, 7]
    scores, _ = principal_scores(drifted.features[fname])
    kept = r_squared(drifted.item_factors[:, :6], scores[:, :14])  # drift (8) + kept factors (6)
    omitted = r_squared(drifted.item_factors[:, 6:], scores[:, :40])  # chance level is 40 / 1000
    assert (kept > 0.9).all(), kept
    assert (omitted < 0.08).all(), omitted


def test_without_defects_the_features_carry_every_factor():
    plain = writer.generate(seed=4, **SIZES)
    scores, explained = principal_scores(plain.features["image_feat.npy"])
    assert explained[:8].sum() > 0.7 and (r_squared(plain.item_factors, scores[:, :8]) > 0.9).all()
    assert plain.omitted.size == 0 and not plain.drift


def test_defects_change_only_the_features_and_write_saves_generate(tmp_path):
    small = dict(n_users=120, n_items=80, image_dim=16, text_dim=8)
    plain = writer.write(tmp_path / "plain" / "x", seed=2, **small)
    off = writer.write(tmp_path / "off" / "x", seed=2, **small, drift_dims=0, omit_fraction=0.0)
    on = writer.write(tmp_path / "on" / "x", seed=2, **small, **DRIFT)
    for f in ("x.inter", *writer.FEATURE_FILES):
        assert (plain / f).read_bytes() == (off / f).read_bytes()
    assert (plain / "x.inter").read_bytes() == (on / "x.inter").read_bytes()
    sample = writer.generate(seed=2, **small, **DRIFT)
    data = load_mmrec(on)
    for f in writer.FEATURE_FILES:
        assert np.array_equal(data.features[f.removesuffix(".npy")], sample.features[f])
        assert not np.array_equal(np.load(plain / f), sample.features[f])


def test_cli_writes_the_drift_variant(tmp_path):
    args = ["--n-users", "120", "--n-items", "80", "--image-dim", "16", "--text-dim", "8"]
    assert synthetic_cli(["mmrec", "--out", str(tmp_path / "x"), "--seed", "2", *args,
                          "--drift-dims", "8", "--omit-fraction", "0.25"]) == 0
    sample = writer.generate(seed=2, n_users=120, n_items=80, image_dim=16, text_dim=8, **DRIFT)
    assert np.array_equal(np.load(tmp_path / "x" / "text_feat.npy"), sample.features["text_feat.npy"])


def test_bad_defect_options_are_refused():
    with pytest.raises(ValueError, match="omit_fraction"):
        writer.generate(n_users=20, n_items=10, image_dim=4, text_dim=4, omit_fraction=1.5)
