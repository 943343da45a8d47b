"""DE-Net's networks (the official ``prepare_models``): G, D and C, the frozen DAMSM encoders, and the DAMSM
encoding of captions."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import DENetConfig
from .damsm import CNN_ENCODER, RNN_ENCODER, load_damsm
from .data import n_words
from .models import NetC, NetD, NetG


@dataclass
class Nets:
    netG: NetG  # noqa: N815
    netD: NetD  # noqa: N815
    netC: NetC  # noqa: N815
    text_encoder: RNN_ENCODER
    image_encoder: CNN_ENCODER


def load_encoders(config: DENetConfig, device: torch.device, vocab_size: int | None = None
                  ) -> tuple[RNN_ENCODER, CNN_ENCODER]:
    """The frozen DAMSM encoders named by the config (strict; one-line errors for a missing or wrong file).
    ``vocab_size`` defaults to the size of the dataset's DAMSM vocabulary."""
    text_encoder, image_encoder = load_damsm(config.text_encoder, config.image_encoder,
                                             vocab_size or n_words(config), input_size=config.damsm_input_size)
    return text_encoder.to(device), image_encoder.to(device)


def build_nets(config: DENetConfig, device: torch.device, vocab_size: int | None = None) -> Nets:
    """``NetG(nf, z_dim)``, ``NetD(nf)``, ``NetC(nf)`` (official ``prepare_models``) and the frozen DAMSM."""
    text_encoder, image_encoder = load_encoders(config, device, vocab_size)
    netG = NetG(config.nf, imsize=config.imsize).to(device)  # noqa: N806
    netD = NetD(config.nf, config.imsize).to(device)  # noqa: N806
    return Nets(netG, netD, NetC(config.nf).to(device), text_encoder, image_encoder)


@torch.no_grad()
def encode(text_encoder: RNN_ENCODER, tokens: torch.Tensor, lengths: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """DAMSM (words [B, 256, T], sentence [B, 256]) of word ids [B, words_num] (frozen, eval mode)."""
    words, sent = text_encoder(tokens, lengths)
    return words.detach(), sent.detach()
