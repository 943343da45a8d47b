"""GALIP's data: DF-GAN layout through ``common.data.text_image``, CLIP tokens, one random caption per image.

``tobran/GALIP:code/lib/datasets.py`` and ``lib/perpare.py`` (spec text_to_image.md 1.1-1.3): the same random
crop + flip transform for train and test, ``clip.tokenize(caption, truncate=True)``, ``drop_last=True``, shuffle or a
``DistributedSampler`` whose epoch is set every epoch (``common.distributed.epoch_loader``).
"""

from __future__ import annotations

from common.data.text_image import ClipTokenizer, TextImageDataset

from .config import GALIPConfig


def dataset(config: GALIPConfig, split: str) -> TextImageDataset:
    """The ``split`` ('train' or 'test') of ``config.data`` with one random CLIP-tokenised caption per item."""
    return TextImageDataset(config.data, split, config.dataset, config.imsize, tokenizer=ClipTokenizer(),
                            captions="random", augment=True, image_dir=config.image_dir)
