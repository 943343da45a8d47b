"""Fréchet Inception Distance exactly as pytorch-fid 0.3.0 computes it, with no download.

The network is pytorch-fid's own ``InceptionV3([3])`` (the FID-variant blocks of the TF 2015-12-05
graph, pool3 = 2048-d, input bilinearly resized to 299 and mapped from [0, 1] to [-1, 1]); its
weights come from a local copy of ``pt_inception-2015-12-05-6726825d.pth`` instead of the URL.

FID = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)), with pytorch-fid's eps*I retry when
the product is singular and its check that the imaginary part of the root is negligible.

Resize protocols (what happens to an image before the network):
- ``pytorch-fid``: the image as is, in [0, 1]; the network resizes to 299 (bilinear).
- ``arldm64``: AR-LDM / StoryDALL-E story protocol (``xichenpan/ARLDM:main.py`` ``fid_augment``):
  the uint8 image is first resized to 64x64 with PIL bilinear, then as above.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from PIL import Image
from scipy import linalg
from tqdm import tqdm

from common.errors import DataFormatError, WeightsNotFoundError

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_SOURCE = (
    "pytorch-fid's release 'fid_weights' on GitHub (mseitzer/pytorch-fid, file " + FID_WEIGHTS_FILE + ")"
)
PROTOCOLS = ("pytorch-fid", "arldm64")


def _pytorch_fid_inception():
    from pytorch_fid import inception  # imported here: only the image projects install pytorch-fid

    return inception


def load_fid_inception(weights: str | Path, key: str = "inception_weights") -> torch.nn.Module:
    """pytorch-fid's ``InceptionV3([3])`` with weights read from ``weights`` (config key ``key``)."""
    weights = Path(weights)
    if not weights.is_file():
        raise WeightsNotFoundError(key, weights, FID_WEIGHTS_SOURCE)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a corrupt file
        raise DataFormatError(weights, f"not a readable torch state dict ({type(err).__name__})") from None
    pfi = _pytorch_fid_inception()
    try:
        with mock.patch.object(pfi, "load_state_dict_from_url", lambda *args, **kwargs: state):
            net = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
    except (RuntimeError, AttributeError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataFormatError(weights, f"not the FID Inception state dict ({first})") from None
    return net.eval()


def untrained_fid_inception() -> torch.nn.Module:
    """The FID Inception architecture (as pytorch-fid's ``fid_inception_v3``) with random weights."""
    pfi = _pytorch_fid_inception()
    net = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pfi.FIDInceptionE_1(1280)
    net.Mixed_7c = pfi.FIDInceptionE_2(2048)
    return net


def write_random_fid_weights(path: str | Path, seed: int = 0) -> Path:
    """Save RANDOM weights of the FID Inception architecture (for tests and embedded defaults only)."""
    torch.manual_seed(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(untrained_fid_inception().state_dict(), path)
    return path


def to_unit_range(images: torch.Tensor, protocol: str = "pytorch-fid") -> torch.Tensor:
    """[N, 3, H, W] uint8 (0..255) or float (0..1) images -> float [0, 1] as the protocol prescribes."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown FID protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape [N, 3, H, W], got {tuple(images.shape)}")
    if protocol == "pytorch-fid":
        return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    if images.dtype != torch.uint8:
        images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    small = [
        np.asarray(Image.fromarray(img.permute(1, 2, 0).numpy()).resize((64, 64), Image.BILINEAR))
        for img in images.cpu()
    ]
    return torch.from_numpy(np.stack(small)).permute(0, 3, 1, 2).float() / 255.0


class FIDFeatureExtractor:
    """Pool3 activations (2048-d) of the FID Inception for batches of images."""

    def __init__(self, weights: str | Path, protocol: str = "pytorch-fid", device: str | torch.device = "cpu",
                 key: str = "inception_weights") -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown FID protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
        self.protocol = protocol
        self.device = torch.device(device)
        self.net = load_fid_inception(weights, key).to(self.device)

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        x = to_unit_range(images, self.protocol).to(self.device)
        return self.net(x)[0].squeeze(-1).squeeze(-1).cpu().numpy()  # float32, as pytorch-fid

    def features(self, batches: Iterable[torch.Tensor], total: int | None = None) -> np.ndarray:
        """Stack the activations of every batch, with a progress bar."""
        feats = [self(b) for b in tqdm(batches, total=total, desc="FID features", unit="batch")]
        return np.concatenate(feats) if feats else np.zeros((0, 2048), dtype=np.float32)


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of [N, D] activations: mean and unbiased covariance, as pytorch-fid (no dtype change)."""
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need at least 2 feature rows of shape [N, D], got {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (pytorch-fid's algorithm)."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"statistics differ in shape: mu {mu1.shape} vs {mu2.shape}, "
                         f"sigma {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"imaginary component {np.max(np.abs(covmean.imag))} in the matrix square root")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def save_statistics(path: str | Path, mu: np.ndarray, sigma: np.ndarray) -> Path:
    """Write ``mu``/``sigma`` to an ``.npz`` that pytorch-fid (and DF-GAN/GALIP) read."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, mu=mu, sigma=sigma)
    return path


def load_statistics(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) from an ``.npz`` with keys ``mu`` [D] and ``sigma`` [D, D], validated."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "FID statistics file not found")
    try:
        with np.load(path) as f:
            missing = {"mu", "sigma"} - set(f.files)
            if missing:
                raise DataFormatError(path, f"lacks key(s) {', '.join(sorted(missing))} (found {', '.join(f.files)})")
            mu, sigma = f["mu"], f["sigma"]
    except (ValueError, OSError, EOFError) as err:
        raise DataFormatError(path, f"not a readable .npz ({str(err).splitlines()[0]})") from None
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise DataFormatError(path, f"mu {mu.shape} and sigma {sigma.shape} do not fit ([D] and [D, D])")
    return mu, sigma


def fid_from_features(features: np.ndarray, reference: tuple[np.ndarray, np.ndarray]) -> float:
    """FID of a feature set against reference statistics (mu, sigma)."""
    return frechet_distance(*statistics(features), *reference)
