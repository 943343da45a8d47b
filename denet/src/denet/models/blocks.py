"""Building blocks of DE-Net's generator (Tao et al., AAAI 2023, Sec. 3).

Follows ``tobran/DE-Net:code/models/model.py`` (``UNetDown``, ``UNetYp``, ``CAFF``, ``ConvBlock``, ``MLP``) and
``code/models/CCN.py`` (``cConv2d``). Attribute names equal the official ones so that state-dict keys map 1:1.
The official code applies ``LeakyReLU(inplace=True)``; here the activations are out of place, which gives the same
values and keeps intermediate tensors (e.g. ones captured by hooks) untouched.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

COND_DIM = 256  # sentence-code width hard-coded throughout the official model (DAMSM EMBEDDING_DIM)
SLOPE = 0.2  # every LeakyReLU in the official model


def _cond_mlp(cond_dim: int, out_dim: int) -> nn.Sequential:
    """Linear(cond, cond) -> ReLU -> Linear(cond, out), named ``linear1``/``relu1``/``linear2`` as upstream."""
    return nn.Sequential(OrderedDict([
        ("linear1", nn.Linear(cond_dim, cond_dim)),
        ("relu1", nn.ReLU()),
        ("linear2", nn.Linear(cond_dim, out_dim)),
    ]))


class UNetDown(nn.Module):
    """Encoder step: conv 4x4 / 2 (pad 1, no bias) -> BatchNorm -> LeakyReLU 0.2.

    Returns ``(h, m)`` where ``m`` is the block input, used by the decoder as the same-resolution skip.
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return F.leaky_relu(self.bn(self.conv(h)), SLOPE), h


class UNetYp(nn.Module):
    """Structure ("mask") path step: nearest x2 -> conv 3x3 (bias) -> LeakyReLU 0.2 -> + skip."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, 1, 1)

    def forward(self, h: torch.Tensor, skip_input: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv(F.interpolate(h, scale_factor=2)), SLOPE)
        return h + skip_input


class CAFF(nn.Module):
    """Channel-wise affine of DEBlock's channel branch: ``gamma(c) * x + beta(c)``.

    Init (official ``_initialize``): ``fc_gamma.linear2`` W=0, b=1 and ``fc_beta.linear2`` W=0, b=0, so a fresh
    CAFF is the identity map.
    """

    def __init__(self, num_features: int, cond_dim: int = COND_DIM) -> None:
        super().__init__()
        self.num_features = num_features
        self.fc_gamma = _cond_mlp(cond_dim, num_features)
        self.fc_beta = _cond_mlp(cond_dim, num_features)
        self._initialize()

    def _initialize(self) -> None:
        nn.init.zeros_(self.fc_gamma.linear2.weight)
        nn.init.ones_(self.fc_gamma.linear2.bias)
        nn.init.zeros_(self.fc_beta.linear2.weight)
        nn.init.zeros_(self.fc_beta.linear2.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        gamma = self.fc_gamma(c).view(-1, self.num_features, 1, 1)
        beta = self.fc_beta(c).view(-1, self.num_features, 1, 1)
        return gamma * x + beta


class ConvBlock(nn.Module):
    """CWP image encoder: conv 3x3 (in->in, bias) -> LeakyReLU 0.2 -> conv 4x4 valid (in->out, bias)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, in_ch, 3, 1, 1)
        self.act = nn.LeakyReLU(SLOPE)
        self.conv2 = nn.Conv2d(in_ch, out_ch, 4, 1, 0)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.act(self.conv1(h)))


class MLP(nn.Module):
    """``main``: Linear(in, in) -> LeakyReLU 0.2 -> Linear(in, out) (CWP text encoder and fusion)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.main = nn.Sequential(OrderedDict([
            ("linear1", nn.Linear(in_dim, in_dim)),
            ("relu1", nn.LeakyReLU(SLOPE)),
            ("linear2", nn.Linear(in_dim, out_dim)),
        ]))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.main(h)


class cConv2d(nn.Module):  # noqa: N801  (official class name)
    """Text-conditioned convolution of DCBlock (``code/models/CCN.py``).

    The shared kernel ``weight`` [out, in, k, k] is modulated per sample, ``W_b = W * scale_b + shift_b`` with
    ``scale_b, shift_b = scales(c_b), shifts(c_b)`` viewed [out, in, 1, 1] (one factor per kernel slice, broadcast
    over the k x k taps), and all samples run as one grouped convolution with ``groups = B``.

    ``bias`` [1, out, 1, 1] is a parameter (kept for state-dict parity and initialised as upstream) but, exactly as
    in the official forward (where ``+ self.bias`` is commented out), it is NOT added to the output.
    Init: ``scales.linear2`` W=0, b=1 and ``shifts.linear2`` W=0, b=0 (identity modulation); ``weight`` Kaiming
    uniform with a=sqrt(5) and ``bias`` U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as ``nn.Conv2d``.
    Only ``groups=1`` is supported (the only value DE-Net uses). The output view assumes a size-preserving conv
    (stride 1, padding (k-1)/2), as the official ``.view(-1, out, H, W)`` does.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, groups: int = 1, padding_mode: str = "zeros", cond_dim: int = COND_DIM) -> None:
        super().__init__()
        if groups != 1:
            raise ValueError("cConv2d supports groups=1 only (as used by DE-Net)")
        if padding_mode != "zeros":
            raise ValueError("cConv2d supports padding_mode='zeros' only (as used by DE-Net)")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = (kernel_size, kernel_size)
        self.stride = (stride, stride)
        self.padding = (padding, padding)
        self.dilation = (dilation, dilation)
        self.groups = groups
        self.padding_mode = padding_mode
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(1, out_channels, 1, 1))
        self.scales = _cond_mlp(cond_dim, in_channels * out_channels)
        self.shifts = _cond_mlp(cond_dim, in_channels * out_channels)
        self._initialize()
        self.reset_parameters()

    def _initialize(self) -> None:
        nn.init.zeros_(self.scales.linear2.weight)
        nn.init.ones_(self.scales.linear2.bias)
        nn.init.zeros_(self.shifts.linear2.weight)
        nn.init.zeros_(self.shifts.linear2.bias)

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        bound = 1 / math.sqrt(fan_in)
        nn.init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, bias not applied")

    def modulated_weight(self, c: torch.Tensor) -> torch.Tensor:
        """Per-sample kernels [B, out, in, k, k] = ``weight * scale(c) + shift(c)``."""
        b = c.shape[0]
        scale = self.scales(c).view(b, self.out_channels, self.in_channels, 1, 1)
        shift = self.shifts(c).view(b, self.out_channels, self.in_channels, 1, 1)
        return self.weight * scale + shift

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        b, ch, height, width = x.shape
        weight = self.modulated_weight(c).reshape(b * self.out_channels, self.in_channels, *self.kernel_size)
        out = F.conv2d(x.reshape(1, b * ch, height, width), weight, None, self.stride, self.padding, self.dilation, b)
        return out.view(b, self.out_channels, height, width)  # official: `# + self.bias` (not applied)
