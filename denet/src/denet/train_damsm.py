"""``denet train-damsm``: pre-train AttnGAN's DAMSM text and image encoders on a DF-GAN-layout dataset, for a new
dataset or the embedded default (``taoxugit/AttnGAN:code/pretrain_DAMSM.py``, ``cfg/DAMSM/{bird,coco}.yml``).

Per batch (``damsm_batch_size``, ``drop_last``; images through the AttnGAN transform at ``damsm_input_size``:
resize to size*76/64, random crop, flip; one random caption per image): loss = w0 + w1 + s0 + s1 (AttnGAN Eq. 10-13,
γ1 4, γ2 5, γ3 10, same-class masks from the CUB class ids); the RNN's gradient norm is clipped at
``rnn_grad_clip``; Adam(β 0.5, 0.999) is created anew every epoch, as upstream, with lr ``damsm_lr`` x 0.98 per
epoch while lr > ``damsm_lr`` / 10. Only the RNN and the two image embedding layers train; the Inception trunk is
frozen (its BatchNorms in train mode, as upstream). Writes ``text_encoder<epoch>.pth`` / ``image_encoder<epoch>.pth``
(plain state dicts, loadable by ``load_damsm`` and by AttnGAN/DF-GAN) every 50 epochs and at the end.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from tqdm import tqdm

from common.distributed import Dist, epoch_loader
from common.io import atomic_save
from common.rng import set_seed

from .config import DENetConfig
from .damsm import CNN_ENCODER, RNN_ENCODER, sent_loss, words_loss
from .data import class_ids, dataset, n_words

log = logging.getLogger(__name__)
SNAPSHOT_INTERVAL = 50


def damsm_step(text_encoder: RNN_ENCODER, image_encoder: CNN_ENCODER, batch: dict, dataset_name: str,
               device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
    """The DAMSM loss of one batch and its four parts."""
    images, tokens = batch["image"].to(device), batch["tokens"].to(device)
    lengths = batch["length"].to(device)
    words, sent = text_encoder(tokens, lengths)
    region, code = image_encoder(images)
    labels = torch.arange(images.size(0), device=device)
    cls = class_ids(batch["key"], dataset_name)
    w0, w1, _ = words_loss(region, words, labels, lengths, cls)
    s0, s1 = sent_loss(code, sent, labels, cls)
    parts = {"w0": w0.item(), "w1": w1.item(), "s0": s0.item(), "s1": s1.item()}
    return w0 + w1 + s0 + s1, parts


def train_damsm(config: DENetConfig, out_dir: str | Path, epochs: int | None = None) -> tuple[Path, Path]:
    """Train for ``epochs`` (default ``config.damsm_epochs``); returns the final (text, image) encoder files."""
    epochs = epochs or config.damsm_epochs
    out_dir = Path(out_dir)
    device = torch.device(config.device)
    set_seed(config.seed)
    text_encoder = RNN_ENCODER(n_words(config)).to(device)
    image_encoder = CNN_ENCODER(inception_weights=config.inception_weights, weights_key="inception_weights",
                                input_size=config.damsm_input_size).to(device)
    params = [*text_encoder.parameters(), *(p for p in image_encoder.parameters() if p.requires_grad)]
    train_set = dataset(config, "train", image_size=config.damsm_input_size)
    where = Dist(0, 1, device)
    lr = config.damsm_lr
    for epoch in range(1, epochs + 1):
        text_encoder.train()
        image_encoder.train()
        optimizer = torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))
        sums, n = {"w0": 0.0, "w1": 0.0, "s0": 0.0, "s1": 0.0}, 0
        batches = epoch_loader(train_set, config.damsm_batch_size, shuffle=True, seed=config.seed, epoch=epoch,
                               num_workers=config.num_workers, where=where)
        for batch in tqdm(batches, desc=f"DAMSM epoch {epoch}/{epochs}", unit="batch", leave=False):
            loss, parts = damsm_step(text_encoder, image_encoder, batch, config.dataset, device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(text_encoder.parameters(), config.rnn_grad_clip)
            optimizer.step()
            sums = {k: sums[k] + parts[k] for k in sums}
            n += 1
        log.info("DAMSM epoch %d: s_loss %.3f %.3f | w_loss %.3f %.3f | lr %.5f%s", epoch, sums["s0"] / n,
                 sums["s1"] / n, sums["w0"] / n, sums["w1"] / n, lr, config.label())
        if lr > config.damsm_lr / 10.0:
            lr *= 0.98
        if epoch % SNAPSHOT_INTERVAL == 0 or epoch == epochs:
            text_path, image_path = out_dir / f"text_encoder{epoch}.pth", out_dir / f"image_encoder{epoch}.pth"
            atomic_save(text_encoder.state_dict(), text_path)
            atomic_save(image_encoder.state_dict(), image_path)
    return text_path, image_path
