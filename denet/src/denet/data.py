"""DE-Net's data: DF-GAN layout through ``common.data.text_image`` with DAMSM tokens (spec 1.1-1.3).

One random caption of the first ``captions_per_image`` per item and epoch, tokenised to ``words_num`` DAMSM word ids;
the train transform of DF-GAN/GALIP (resize to 304, random 256 crop, flip), ``drop_last`` batches (the loader is
``common.distributed.epoch_loader``: shuffle or a ``DistributedSampler``, reproducible per (seed, epoch)).
"""

from __future__ import annotations

from pathlib import Path

import torch

from common.data.text_image import DAMSM_PICKLE, DamsmTokenizer, TextImageDataset, load_damsm_captions
from common.errors import DataFormatError

from .config import DENetConfig

__all__ = ["class_ids", "dataset", "n_words", "tokenizer"]


def tokenizer(config: DENetConfig) -> DamsmTokenizer:
    return DamsmTokenizer.from_pickle(Path(config.data) / DAMSM_PICKLE, config.words_num)


def n_words(config: DENetConfig) -> int:
    """Vocabulary size of the dataset's ``captions_DAMSM.pickle`` (the text encoder's embedding rows)."""
    return len(load_damsm_captions(Path(config.data) / DAMSM_PICKLE).ixtoword)


def dataset(config: DENetConfig, split: str, image_size: int | None = None, augment: bool = True
            ) -> TextImageDataset:
    """The ``split`` of ``config.data`` with one random DAMSM-tokenised caption per item."""
    return TextImageDataset(config.data, split, config.dataset, image_size or config.imsize,
                            tokenizer=tokenizer(config), captions="random",
                            captions_per_image=config.captions_per_image, augment=augment, image_dir=config.image_dir)


def class_ids(keys: list[str], dataset_name: str) -> torch.Tensor | None:
    """CUB class of each key (the ``NNN.`` prefix, what AttnGAN's ``class_info.pickle`` holds), for the DAMSM
    losses' same-class masks; None for COCO (AttnGAN gives every COCO image its own class)."""
    if dataset_name != "birds":
        return None
    try:
        return torch.tensor([int(k.split(".", 1)[0]) for k in keys])
    except ValueError:
        raise DataFormatError(Path("filenames.pickle"), f"CUB keys must start with 'NNN.', got {keys[0]!r}") from None
