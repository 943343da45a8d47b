"""Stories for StoryImager from ``common.data.story``: the AR-LDM HDF5 or StoryDALL-E's raw folders.

Frames are resized to ``resolution`` (PIL bicubic, as torchvision's Resize on the PIL frame in AR-LDM) and
mapped to [-1, 1]; ``collate`` keeps captions as B lists of K strings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common.data.story import ARLDMStories, FlintstonesSVStories, PororoSVStories, StoryDataset
from common.errors import DataFormatError

from .config import StoryImagerConfig


def arldm_file(data: str | Path) -> Path:
    """The HDF5 file itself, or the only ``*.h5`` file in a folder."""
    data = Path(data)
    if not data.is_dir():
        return data
    files = sorted(data.glob("*.h5"))
    if len(files) != 1:
        raise DataFormatError(data, f"expected one AR-LDM .h5 file in the folder, found {len(files)}")
    return files[0]


def open_stories(config: StoryImagerConfig, split: str):
    """The ``Story`` sequence of one split in the config's data format."""
    if config.data_format == "arldm":
        return ARLDMStories(arldm_file(config.data), split, config.characters)
    if config.data_format == "pororo":
        return PororoSVStories(config.data, split)
    return FlintstonesSVStories(config.data, split)


def frame_transform(resolution: int):
    """(S, S, 3) uint8 -> [3, R, R] float in [-1, 1]."""

    def transform(frame: np.ndarray) -> torch.Tensor:
        img = Image.fromarray(frame)
        if img.size != (resolution, resolution):
            img = img.resize((resolution, resolution), Image.BICUBIC)
        x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float()
        return x / 127.5 - 1.0

    return transform


def story_dataset(config: StoryImagerConfig, split: str, crop: str = "random", raw: bool = False) -> StoryDataset:
    """The split as a dataset; ``raw`` keeps uint8 frames at the stored size (the FID reference)."""
    return StoryDataset(open_stories(config, split), crop=crop, seed=config.seed,
                        transform=None if raw else frame_transform(config.resolution))


def collate(items: list[dict]) -> dict:
    out = {"images": torch.stack([it["images"] for it in items]), "captions": [list(it["captions"]) for it in items],
           "index": torch.tensor([it["index"] for it in items])}
    if all("labels" in it for it in items):
        out["labels"] = torch.stack([it["labels"] for it in items])
    return out
