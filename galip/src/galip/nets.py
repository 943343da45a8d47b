"""GALIP's networks (the official ``prepare_models``): G, D and C, and the frozen CLIP they share."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from common.data.clip_weights import load_clip

from .config import GALIPConfig
from .models import CLIPImageEncoder, CLIPTextEncoder, NetC, NetD, NetG


@dataclass
class Nets:
    """GALIP's networks; the three CLIP users share one frozen CLIP model (official CLIP4trn)."""

    netG: NetG  # noqa: N815
    netD: NetD  # noqa: N815
    netC: NetC  # noqa: N815
    image_encoder: CLIPImageEncoder
    text_encoder: CLIPTextEncoder


def build_nets(config: GALIPConfig, clip_model: nn.Module, device: torch.device) -> Nets:
    """The official ``prepare_models``: NetG(nf, z_dim, cond_dim, imsize, ch_size, mixed_precision, CLIP), NetD,
    NetC, and the frozen CLIP image/text encoders sharing ``clip_model``."""
    netG = NetG(config.nf, config.z_dim, config.cond_dim, config.imsize, config.ch_size, clip_model,  # noqa: N806
                config.mixed_precision, config.out_size)
    netD = NetD(config.nf, config.imsize, config.ch_size, config.mixed_precision,  # noqa: N806
                clip_ch=clip_model.visual.conv1.out_channels, out_ch=config.d_out_ch)
    netC = NetC(config.nf, config.cond_dim, config.mixed_precision, in_ch=config.d_out_ch)  # noqa: N806
    nets = Nets(netG, netD, netC, CLIPImageEncoder(clip_model), CLIPTextEncoder(clip_model))
    for net in (nets.netG, nets.netD, nets.netC, nets.image_encoder, nets.text_encoder):
        net.to(device)
    nets.image_encoder.eval()
    nets.text_encoder.eval()
    return nets


def load_clip_model(config: GALIPConfig, device: torch.device) -> nn.Module:
    """CLIP ViT-B/32 from ``config.clip_weights`` (fp16 on CUDA, fp32 on CPU, as ``clip.load``); never downloads."""
    model, _ = load_clip(config.clip_weights, device)
    return model
