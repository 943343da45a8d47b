"""FID: distance equal to pytorch-fid's, extractor built offline from a local weights file."""

from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_fid import fid_score
from pytorch_fid import inception as pfi

from common.errors import DataFormatError, WeightsNotFoundError
from common.metrics import fid


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return fid.write_random_fid_weights(tmp_path_factory.mktemp("w") / fid.FID_WEIGHTS_FILE, seed=0)


def random_stats(rng, n=200, d=12, shift=0.0):
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + shift
    return x.mean(0), np.cov(x, rowvar=False)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distance_equals_pytorch_fid(seed):
    rng = np.random.default_rng(seed)
    a, b = random_stats(rng), random_stats(rng, shift=0.7)
    assert fid.frechet_distance(*a, *b) == pytest.approx(fid_score.calculate_frechet_distance(*a, *b), rel=1e-10)


def test_distance_is_zero_for_identical_sets():
    feats = np.random.default_rng(3).standard_normal((100, 8))
    assert fid.fid_from_features(feats, fid.statistics(feats)) == pytest.approx(0.0, abs=1e-8)


def test_distance_matches_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, -1.0, 2.5])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    want = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
    assert fid.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(want, rel=1e-10)


def test_singular_covariances_use_the_eps_retry_like_pytorch_fid():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((5, 10)), rng.standard_normal((5, 10))  # rank 4 covariance in 10-d
    a, b = fid.statistics(x), fid.statistics(y)
    assert fid.frechet_distance(*a, *b) == pytest.approx(fid_score.calculate_frechet_distance(*a, *b), rel=1e-6)


def test_end_to_end_fid_equals_pytorch_fid_on_image_folders(weights, tmp_path):
    """Same images, same (random) weights: our extractor + distance == pytorch-fid's calculate_fid_given_paths."""
    rng = np.random.default_rng(5)
    folders = []
    for name, offset in (("real", 0), ("fake", 60)):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(12):
            img = np.clip(rng.integers(0, 196, (64, 64, 3)) + offset, 0, 255).astype(np.uint8)
            Image.fromarray(img).save(folder / f"{i:02d}.png")
        folders.append(folder)
    state = torch.load(weights, weights_only=True)
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: state):
        want = fid_score.calculate_fid_given_paths([str(f) for f in folders], 6, "cpu", 2048, num_workers=0)

    extractor = fid.FIDFeatureExtractor(weights)

    def batches(folder):
        files = sorted(folder.glob("*.png"))
        imgs = torch.stack([torch.from_numpy(np.array(Image.open(f))).permute(2, 0, 1) for f in files])
        return imgs.split(6)

    real = extractor.features(batches(folders[0]))
    fake = extractor.features(batches(folders[1]))
    assert real.shape == (12, 2048)
    got = fid.frechet_distance(*fid.statistics(fake), *fid.statistics(real))
    assert got == pytest.approx(want, rel=1e-4)


def test_statistics_round_trip_through_npz(tmp_path):
    mu, sigma = random_stats(np.random.default_rng(6))
    path = fid.save_statistics(tmp_path / "s.npz", mu, sigma)
    with np.load(path) as f:  # the keys pytorch-fid and DF-GAN read
        assert np.array_equal(f["mu"], mu) and np.array_equal(f["sigma"], sigma)
    got = fid.load_statistics(path)
    assert np.array_equal(got[0], mu) and np.array_equal(got[1], sigma)


def test_arldm64_protocol_downsamples_to_64_pixels_with_pil_bilinear():
    img = torch.randint(0, 256, (2, 3, 128, 128), dtype=torch.uint8)
    out = fid.to_unit_range(img, "arldm64")
    want = np.asarray(Image.fromarray(img[1].permute(1, 2, 0).numpy()).resize((64, 64), Image.BILINEAR)) / 255.0
    assert out.shape == (2, 3, 64, 64)
    assert torch.allclose(out[1].permute(1, 2, 0), torch.from_numpy(want).float())
    assert torch.equal(fid.to_unit_range(img, "pytorch-fid"), img.float() / 255)


def test_missing_weights_names_key_path_and_source(tmp_path):
    with pytest.raises(WeightsNotFoundError) as err:
        fid.FIDFeatureExtractor(tmp_path / "absent.pth", key="inception_weights")
    msg = str(err.value)
    assert "\n" not in msg and "inception_weights" in msg and "absent.pth" in msg and "pytorch-fid" in msg


def test_wrong_weights_file_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(DataFormatError) as err:
        fid.load_fid_inception(bad)
    assert "\n" not in str(err.value) and "bad.pth" in str(err.value)
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(DataFormatError, match="junk.pth"):
        fid.load_fid_inception(tmp_path / "junk.pth")


def test_statistics_file_without_sigma_is_rejected(tmp_path):
    np.savez(tmp_path / "s.npz", mu=np.zeros(3))
    with pytest.raises(DataFormatError, match="lacks key"):
        fid.load_statistics(tmp_path / "s.npz")
