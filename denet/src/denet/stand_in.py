"""A stand-in for the ImageNet Inception-v3 of the DAMSM image encoder, for the embedded default only.

DE-Net's DAMSM image encoder is AttnGAN's: a frozen ImageNet Inception-v3 trunk with two trained embedding layers.
ImageNet weights cannot be downloaded here, and a RANDOM trunk makes a useless DAMSM term: its features are not
about colour or shape, and the editor learns to fool it by repainting the background (README, "Embedded
default"). So the embedded default first trains the trunk as a classifier of the dataset's CUB classes (on the
SYNTHETIC shapes: colour x shape, 24 classes), as ImageNet pre-training gives the real trunk its features. The
result keeps the key layout of torchvision's ``inception_v3_google-0cc3c7bd.pth`` (its AuxLogits and 1000-way fc
stay random; the class head is dropped) and is read through the ordinary ``inception_weights`` path, so
``train-damsm`` and DE-Net use it exactly as they use the real file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from common.distributed import Dist, epoch_loader
from common.errors import DataFormatError
from common.io import atomic_save, read_state_dict
from common.metrics.fid import write_random_torchvision_inception_weights
from common.rng import set_seed

from .config import DENetConfig
from .damsm import CNN_ENCODER
from .data import class_ids, dataset

log = logging.getLogger(__name__)


def train_stand_in_inception(config: DENetConfig, out: str | Path, epochs: int, lr: float = 1e-3) -> Path:
    """Train the trunk (random start, ``config.damsm_input_size`` input, [-1, 1] images as the DAMSM sees them,
    BatchNorms in train mode) with a linear class head on the pooled 2048-d features (Adam ``lr``, cross-entropy,
    ``damsm_batch_size``); write the torchvision-layout file ``out``."""
    if config.dataset != "birds":
        raise DataFormatError(config.data, f"the stand-in trunk learns CUB classes; {config.dataset!r} has none")
    out = Path(out)
    set_seed(config.seed)
    device = torch.device(config.device)
    random_file = write_random_torchvision_inception_weights(out.with_suffix(".random.pth"), seed=config.seed)
    encoder = CNN_ENCODER(inception_weights=random_file, input_size=config.damsm_input_size).to(device)
    state = read_state_dict(random_file)  # AuxLogits and fc stay random; the trunk is overwritten below
    random_file.unlink()
    trunk = [m for name, m in encoder.named_children() if not name.startswith("emb_")]
    for module in trunk:
        module.requires_grad_(True)
    train_set = dataset(config, "train", image_size=config.damsm_input_size)
    n_classes = int(class_ids(train_set.keys, config.dataset).max())
    head = torch.nn.Linear(2048, n_classes).to(device)
    params = [p for m in (*trunk, head) for p in m.parameters()]
    optimizer = torch.optim.Adam(params, lr=lr)
    where = Dist(0, 1, device)
    encoder.train()
    for epoch in range(1, epochs + 1):
        correct = total = 0
        loss_sum = 0.0
        batches = epoch_loader(train_set, config.damsm_batch_size, shuffle=True, seed=config.seed, epoch=epoch,
                               num_workers=config.num_workers, where=where)
        for batch in tqdm(batches, desc=f"stand-in Inception epoch {epoch}/{epochs}", unit="batch", leave=False):
            labels = class_ids(batch["key"], config.dataset).to(device) - 1
            logits = head(encoder.pooled(batch["image"].to(device)))
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * labels.numel()
            correct += (logits.argmax(1) == labels).sum().item()
            total += labels.numel()
        log.info("stand-in Inception epoch %d: loss %.3f, train accuracy %.3f (chance %.3f)%s",
                 epoch, loss_sum / total, correct / total, 1 / head.out_features, config.label())
    state.update({k: v for k, v in encoder.state_dict().items() if not k.startswith("emb_")})
    atomic_save(state, out)
    return out
