"""GALIP models (``tobran/GALIP:code/models/GALIP.py``), with the official attribute names for 1:1 state dicts."""

from .blocks import Affine, DFBlock, GBlock, MBlock
from .clip_encoders import CLIPImageEncoder, CLIPMapper, CLIPTextEncoder
from .discriminator import DBlock, NetC, NetD
from .generator import CLIPAdapter, NetG, get_G_in_out_chs

__all__ = [
    "Affine", "CLIPAdapter", "CLIPImageEncoder", "CLIPMapper", "CLIPTextEncoder", "DBlock", "DFBlock", "GBlock",
    "MBlock", "NetC", "NetD", "NetG", "get_G_in_out_chs",
]
