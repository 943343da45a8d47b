"""GALIP's data: DF-GAN layout through ``common.data.text_image``, CLIP tokens, one random caption per image.

``tobran/GALIP:code/lib/datasets.py`` and ``lib/perpare.py`` (spec text_to_image.md 1.1-1.3): the same random
crop + flip transform for train and test, ``clip.tokenize(caption, truncate=True)``, ``drop_last=True``, shuffle or a
``DistributedSampler`` whose epoch is set every epoch.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

from common.data.text_image import ClipTokenizer, TextImageDataset

from .config import GALIPConfig
from .distributed import Dist


def dataset(config: GALIPConfig, split: str) -> TextImageDataset:
    """The ``split`` ('train' or 'test') of ``config.data`` with one random CLIP-tokenised caption per item."""
    return TextImageDataset(config.data, split, config.dataset, config.imsize, tokenizer=ClipTokenizer(),
                            captions="random", augment=True, image_dir=config.image_dir)


def loader(ds: TextImageDataset, batch_size: int, *, shuffle: bool, seed: int, epoch: int, num_workers: int,
           where: Dist) -> DataLoader:
    """Batches of ``ds`` for one epoch. Order, random captions, crops and flips depend only on (seed, epoch) and
    the global RNG state, so a resumed run sees the same batches."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    if where.world_size > 1:
        sampler = DistributedSampler(ds, where.world_size, where.rank, shuffle=shuffle, seed=seed, drop_last=True)
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(ds, generator=generator) if shuffle else SequentialSampler(ds)
    return DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=num_workers, drop_last=True,
                      generator=generator, pin_memory=where.device.type == "cuda")
