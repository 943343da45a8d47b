"""DE-Net models (``tobran/DE-Net:code/models/model.py`` and ``code/models/CCN.py``).

Attribute names equal the official ones, so official state-dict keys map 1:1. The official modules hard-code a
256-d sentence code (DAMSM), so the generator only works at 256 x 256 px (six stride-2 downs leave the 4 x 4 map
that CWP's 4 x 4 valid convolution flattens to 256 values).
"""

from .blocks import CAFF, MLP, ConvBlock, UNetDown, UNetYp, cConv2d
from .cwp import CWP
from .dcblock import DCBlock
from .discriminator import D_Block, NetC, NetD
from .generator import DEBlock, NetG

__all__ = [
    "CAFF", "CWP", "ConvBlock", "DCBlock", "DEBlock", "D_Block", "MLP", "NetC", "NetD", "NetG", "UNetDown", "UNetYp",
    "cConv2d",
]
