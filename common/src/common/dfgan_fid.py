"""FID under the DF-GAN protocol for datasets in the DF-GAN layout (GALIP, DE-Net): the Inception file and the
reference statistics a run needs, and those statistics made from a dataset's own test images.

``config`` is any paper config with ``data``, ``dataset``, ``imsize``, ``image_dir``, ``fid_weights`` and
``fid_stats``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from common.data.text_image import TextImageDataset, load_cub_bboxes, load_filenames, load_image
from common.errors import WeightsNotFoundError
from common.metrics.fid import FIDFeatureExtractor, save_statistics, statistics

FID_PROTOCOL = "dfgan"
TORCHVISION_INCEPTION_SOURCE = (
    "torchvision's ImageNet Inception-v3, https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth "
    "(Inception_V3_Weights.IMAGENET1K_V1, what the official code's inception_v3(pretrained=True) loads)"
)


def fid_stats_source(prog: str) -> str:
    """Where the reference statistics come from, naming the ``fid-stats`` command of ``prog``."""
    return ("DF-GAN's metadata zip for the dataset (data/<dataset>/npz/*_val256_FIDK0.npz, linked from tobran/DF-GAN's "
            f"README), or make statistics of your own test images with `{prog} fid-stats`")


def check_eval_files(config, prog: str) -> None:
    """One-line errors, before any work, when the Inception weights or the reference statistics are missing."""
    if not Path(config.fid_weights).is_file():
        raise WeightsNotFoundError("fid_weights", Path(config.fid_weights), TORCHVISION_INCEPTION_SOURCE)
    if not Path(config.fid_stats).is_file():
        raise WeightsNotFoundError("fid_stats", Path(config.fid_stats), fid_stats_source(prog))


def fid_extractor(config, device: torch.device) -> FIDFeatureExtractor:
    return FIDFeatureExtractor(config.fid_weights, protocol=FID_PROTOCOL, device=device, key="fid_weights")


def dfgan_real_transform():
    """DF-GAN's real-image FID pipeline (``tobran/DF-GAN:code/eval/FID/fid_score.py``): PIL ``Resize(299)`` of the
    shorter side, ``RandomCrop(299)``, ``ToTensor`` -> [0, 1] (the protocol's 299x299 resize is then a no-op)."""
    from torchvision import transforms

    return transforms.Compose([transforms.Resize(299), transforms.RandomCrop(299), transforms.ToTensor()])


@torch.inference_mode()
def real_statistics(config, out: str | Path, batch_size: int = 32, seed: int = 0) -> Path:
    """``mu``/``sigma`` of the test images' Inception features under the same protocol, saved as ``out`` (npz).

    Which images and crop made DF-GAN's released npz files is not documented (DF-GAN#36); here: every test image as
    the data loader reads it (CUB box crop for birds) through DF-GAN's real-image script pipeline
    (:func:`dfgan_real_transform`, random crop seeded by ``seed``). For datasets without a released npz and for the
    embedded default.
    """
    if not Path(config.fid_weights).is_file():
        raise WeightsNotFoundError("fid_weights", Path(config.fid_weights), TORCHVISION_INCEPTION_SOURCE)
    extractor = fid_extractor(config, torch.device("cpu"))
    probe = TextImageDataset(config.data, "test", config.dataset, config.imsize, image_dir=config.image_dir)
    keys = load_filenames(config.data, "test")
    boxes = load_cub_bboxes(Path(config.data) / "CUB_200_2011") if config.dataset == "birds" else None
    transform = dfgan_real_transform()
    feats = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in tqdm(range(0, len(keys), batch_size), desc="real-image features", unit="batch"):
            chunk = keys[start:start + batch_size]
            images = torch.stack([transform(load_image(probe.image_path(k), None if boxes is None else boxes[k]))
                                  for k in chunk])
            feats.append(extractor(images))
    mu, sigma = statistics(np.concatenate(feats))
    return save_statistics(out, mu, sigma)


def add_fid_stats_command(sub, func) -> None:
    """``fid-stats``: reference FID statistics of a dataset's test images (GALIP's and DE-Net's CLIs)."""
    f = sub.add_parser("fid-stats", help="reference FID statistics (npz) of a dataset's test images")
    f.add_argument("--config", required=True)
    f.add_argument("--data", help="dataset folder (overrides the config)")
    f.add_argument("--fid-weights", help="torchvision inception_v3_google-0cc3c7bd.pth")
    f.add_argument("--out", required=True, help="output .npz")
    f.set_defaults(func=func)
