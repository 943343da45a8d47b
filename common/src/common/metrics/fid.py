"""Fréchet Inception Distance as pytorch-fid 0.3.0 or DF-GAN/GALIP compute it, with no download.

Two networks, each built offline from a local weights file:
- pytorch-fid's own ``InceptionV3([3])`` (the FID-variant blocks of the TF 2015-12-05 graph, pool3 = 2048-d,
  input bilinearly resized to 299 and mapped from [0, 1] to [-1, 1]); weights: a local copy of
  ``pt_inception-2015-12-05-6726825d.pth`` instead of the URL.
- DF-GAN/GALIP/DE-Net's wrapper ``InceptionV3([3])`` (``tobran/GALIP:code/models/inception.py``, identical in
  ``tobran/DF-GAN``): the blocks of torchvision's ImageNet ``inception_v3`` up to the final average pool (2048-d);
  weights: a local copy of torchvision's ``inception_v3_google-0cc3c7bd.pth``.

FID = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)), with pytorch-fid's eps*I retry when
the product is singular and its check that the imaginary part of the root is negligible.

Protocols (what happens to an image before the network, and which network):
- ``pytorch-fid``: the image as is, in [0, 1]; the network resizes to 299 (bilinear).
- ``arldm64``: AR-LDM / StoryDALL-E story protocol (``xichenpan/ARLDM:main.py`` ``fid_augment``):
  the uint8 image is first resized to 64x64 with PIL bilinear, then as ``pytorch-fid``.
- ``dfgan``: DF-GAN / GALIP / DE-Net (``tobran/GALIP:code/lib/modules.py`` ``calculate_FID_CLIP_sim``): the image
  in [0, 1] (generator outputs in [-1, 1] go through ``signed_to_unit`` first) is resized to 299x299 with
  torchvision's tensor ``Resize`` (bilinear, no antialias as in the torchvision of that code); the torchvision
  Inception then sees ``x * std_c / 0.5 + (mean_c - 0.5) / 0.5`` (ImageNet mean/std, i.e. about [-0.19, 0.43]),
  not 2x - 1: the wrapper applies torchvision's ``transform_input`` affine to [0, 1] input. Reproduced on purpose.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import linalg
from tqdm import tqdm

from common.errors import DataFormatError, WeightsNotFoundError
from common.io import read_state_dict

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_SOURCE = (
    "pytorch-fid's release 'fid_weights' on GitHub (mseitzer/pytorch-fid, file " + FID_WEIGHTS_FILE + ")"
)
TORCHVISION_INCEPTION_FILE = "inception_v3_google-0cc3c7bd.pth"
TORCHVISION_INCEPTION_URL = "https://download.pytorch.org/models/" + TORCHVISION_INCEPTION_FILE
TORCHVISION_INCEPTION_SOURCE = (
    "torchvision's Inception_V3_Weights.IMAGENET1K_V1 (" + TORCHVISION_INCEPTION_URL + ")"
)
PROTOCOLS = ("pytorch-fid", "arldm64", "dfgan")
DFGAN_SIZE = 299
# ImageNet mean/std; the DF-GAN/GALIP wrapper maps [0, 1] input with x * std / 0.5 + (mean - 0.5) / 0.5
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _pytorch_fid_inception():
    from pytorch_fid import inception  # imported here: only the image projects install pytorch-fid

    return inception


def load_fid_inception(weights: str | Path, key: str = "inception_weights") -> torch.nn.Module:
    """pytorch-fid's ``InceptionV3([3])`` with weights read from ``weights`` (config key ``key``).

    pytorch-fid fetches its weights with ``torch.hub.load_state_dict_from_url``, which reads a file of the same
    name from the hub cache when one is there: the local file is offered through a scratch hub folder, never
    downloaded.
    """
    weights = Path(weights)
    if not weights.is_file():
        raise WeightsNotFoundError(key, weights, FID_WEIGHTS_SOURCE)
    read_state_dict(weights)  # a corrupt file is one line naming it
    pfi = _pytorch_fid_inception()
    previous = torch.hub.get_dir()
    with tempfile.TemporaryDirectory() as hub:
        (Path(hub) / "checkpoints").mkdir()
        (Path(hub) / "checkpoints" / Path(pfi.FID_WEIGHTS_URL).name).symlink_to(weights.resolve())
        torch.hub.set_dir(hub)
        try:
            net = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
        except (RuntimeError, AttributeError) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise DataFormatError(weights, f"not the FID Inception state dict ({first})") from None
        finally:
            torch.hub.set_dir(previous)
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


def _torchvision_inception() -> torch.nn.Module:
    """torchvision's ``Inception3`` as ``inception_v3(pretrained=True)`` builds it (aux head kept), not initialised."""
    from torchvision.models import inception_v3  # imported here: only the image projects install torchvision

    return inception_v3(weights=None, aux_logits=True, init_weights=False)


class DFGANInception(torch.nn.Module):
    """DF-GAN/GALIP's ``InceptionV3([3])`` (``tobran/GALIP:code/models/inception.py``) on a torchvision Inception.

    Input [N, 3, H, W] in [0, 1]. As the wrapper's defaults (``resize_input=True``, ``normalize_input=True``) do:
    bilinear resize to 299 with ``align_corners=True``, then torchvision's ``transform_input`` affine per channel,
    then Conv2d_1a..Conv2d_4a, the two 3x3/2 max pools, Mixed_5b..Mixed_7c and the global average pool.
    Returns ``[pool]`` with pool [N, 2048, 1, 1], like the wrapper and pytorch-fid.
    """

    def __init__(self, inception: torch.nn.Module) -> None:
        super().__init__()
        names = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
                 "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                 "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "avgpool"]
        self.trunk = torch.nn.Sequential(*(getattr(inception, name) for name in names))
        std, mean = torch.tensor(_IMAGENET_STD), torch.tensor(_IMAGENET_MEAN)
        self.register_buffer("scale", (std / 0.5).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", ((mean - 0.5) / 0.5).view(1, 3, 1, 1), persistent=False)

    def network_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the first convolution sees for [0, 1] input ``x`` (the wrapper's resize and normalisation)."""
        x = torch.nn.functional.interpolate(x, size=(DFGAN_SIZE, DFGAN_SIZE), mode="bilinear", align_corners=True)
        return x * self.scale + self.shift

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.trunk(self.network_input(x))]


def load_torchvision_inception(weights: str | Path, key: str = "inception_weights") -> DFGANInception:
    """DF-GAN/GALIP's Inception with torchvision's ImageNet weights read from ``weights`` (config key ``key``).

    The file must hold exactly the keys of torchvision's ``inception_v3_google-0cc3c7bd.pth`` (AuxLogits and fc
    included; BatchNorm ``num_batches_tracked`` may be absent, as torchvision allows); it is loaded strictly.
    """
    weights = Path(weights)
    if not weights.is_file():
        raise WeightsNotFoundError(key, weights, TORCHVISION_INCEPTION_SOURCE)
    state = read_state_dict(weights)
    net = _torchvision_inception()
    allowed = set(net.state_dict())
    required = {k for k in allowed if not k.endswith(".num_batches_tracked")}
    missing, unexpected = sorted(required - set(state)), sorted(set(state) - allowed)
    if missing or unexpected:
        parts = [f"{len(names)} {what} key(s), e.g. {names[0]}"
                 for what, names in (("missing", missing), ("unexpected", unexpected)) if names]
        raise DataFormatError(weights, f"not torchvision's Inception v3 state dict ({'; '.join(parts)})")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:  # e.g. "size mismatch for fc.weight: ..." on the lines after a header
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else (lines[0] if lines else "RuntimeError")
        raise DataFormatError(weights, f"not torchvision's Inception v3 state dict ({detail})") from None
    return DFGANInception(net).eval()


def write_random_torchvision_inception_weights(path: str | Path, seed: int = 0) -> Path:
    """Save RANDOM weights with the key layout of torchvision's ``inception_v3_google-0cc3c7bd.pth``.

    For tests and embedded defaults only: an FID from them is a random-weight FID, not DF-GAN/GALIP's.
    Convolutions get He-normal weights and BatchNorms random affine parameters and running statistics, so the
    pooled features stay of order one and the BatchNorm eval/train mode is visible.
    """
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, value in _torchvision_inception().state_dict().items():
        if name.endswith(".num_batches_tracked"):
            continue  # left out: strict loading accepts them absent or present and fills in zeros
        if name.endswith(".running_var"):
            value = 0.5 + 1.5 * torch.rand(value.shape, generator=gen)
        elif name.endswith((".running_mean", ".bias")):
            value = 0.1 * torch.randn(value.shape, generator=gen)
        elif value.ndim == 1:  # BatchNorm weight
            value = 0.5 + torch.rand(value.shape, generator=gen)
        else:  # conv / linear weight
            value = torch.randn(value.shape, generator=gen) * (2.0 / value[0].numel()) ** 0.5
        state[name] = value.float().contiguous()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def signed_to_unit(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> [0, 1] as GALIP's FID code does before its Inception.

    ``tobran/GALIP:code/lib/modules.py`` ``calculate_FID_CLIP_sim``: clamp to [-1, 1], ``nan_to_num`` (nan -> -1,
    +inf -> 1, -inf -> -1), then ``Normalize((-1, -1, -1), (2, 2, 2))``, i.e. (x + 1) / 2. (DF-GAN's own loop skips
    the clamp and nan_to_num; for its tanh outputs that changes nothing.)
    """
    x = torch.clamp(images.float(), -1.0, 1.0)
    x = torch.nan_to_num(x, nan=-1.0, posinf=1.0, neginf=-1.0)
    return (x + 1.0) / 2.0


def to_unit_range(images: torch.Tensor, protocol: str = "pytorch-fid") -> torch.Tensor:
    """[N, 3, H, W] uint8 (0..255) or float (0..1) images -> float [0, 1] as the protocol prescribes."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown FID protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape [N, 3, H, W], got {tuple(images.shape)}")
    if protocol in ("pytorch-fid", "dfgan"):
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        if protocol == "dfgan":  # torchvision transforms.Resize((299, 299)) on a tensor, as DF-GAN/GALIP
            from torchvision.transforms import InterpolationMode
            from torchvision.transforms import functional as tvf

            x = tvf.resize(x, [DFGAN_SIZE, DFGAN_SIZE], InterpolationMode.BILINEAR, antialias=False)
        return x
    if images.dtype != torch.uint8:
        images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    small = [
        np.asarray(Image.fromarray(img.permute(1, 2, 0).numpy()).resize((64, 64), Image.BILINEAR))
        for img in images.cpu()
    ]
    return torch.from_numpy(np.stack(small)).permute(0, 3, 1, 2).float() / 255.0


class FIDFeatureExtractor:
    """Pool3 activations (2048-d) of the protocol's Inception for batches of images.

    Images are [N, 3, H, W] uint8 (0..255) or float (0..1). ``weights`` is pytorch-fid's
    ``pt_inception-2015-12-05-6726825d.pth`` for ``pytorch-fid``/``arldm64`` and torchvision's
    ``inception_v3_google-0cc3c7bd.pth`` for ``dfgan`` (feed generator outputs through ``signed_to_unit``).
    """

    def __init__(self, weights: str | Path, protocol: str = "pytorch-fid", device: str | torch.device = "cpu",
                 key: str = "inception_weights") -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown FID protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
        self.protocol = protocol
        self.device = torch.device(device)
        loader = load_torchvision_inception if protocol == "dfgan" else load_fid_inception
        self.net = loader(weights, key).to(self.device)

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        x = to_unit_range(images, self.protocol).to(self.device)
        return self.net(x)[0].squeeze(-1).squeeze(-1).cpu().numpy()  # float32 activations; statistics() widens

    def features(self, batches: Iterable[torch.Tensor], total: int | None = None) -> np.ndarray:
        """Stack the activations of every batch, with a progress bar."""
        feats = [self(b) for b in tqdm(batches, total=total, desc="FID features", unit="batch")]
        return np.concatenate(feats) if feats else np.zeros((0, 2048), dtype=np.float32)


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of [N, D] activations: mean and unbiased covariance in float64, as pytorch-fid (which stores the
    network's float32 activations in a float64 ``np.empty`` array) and GALIP/DF-GAN's ``pred_arr`` do."""
    features = np.asarray(features, dtype=np.float64)
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
