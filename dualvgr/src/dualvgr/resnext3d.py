"""3D ResNeXt-101 of Hara et al. (kenshohara/3D-ResNets-PyTorch), the motion backbone of DualVGR.

Architecture facts from ``NJUPT-MCC/DualVGR-VideoQA:preprocess/models/resnext.py`` and ``build_resnext`` in
``preprocess/preprocess_features.py``: cardinality 32, shortcut type B (1x1x1 conv + BN projection), bottleneck
blocks [3, 4, 23, 3] with widths 128/256/512/1024 and expansion 2, 7x7x7 stem with stride (1, 2, 2), 3x3x3
max-pool with stride 2, and an average pool over (ceil(16/16), ceil(112/32), ceil(112/32)) = (1, 4, 4) for the
16x112x112 clips; the feature is the 2048-d pooled vector (``last_fc=False``). Module names follow the
checkpoint ``resnext-101-kinetics.pth`` (``{'state_dict': ...}`` saved from ``nn.DataParallel``, so every key
starts with ``module.``); its ``fc`` (400 Kinetics classes) is dropped.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from common.errors import DataFormatError, WeightsNotFoundError

CLIP_FRAMES, CLIP_SIZE = 16, 112
WEIGHTS_SOURCE = ("resnext-101-kinetics.pth from kenshohara/3D-ResNets-PyTorch's pretrained models "
                  "(https://drive.google.com/drive/folders/1zvl89AgFAApbH0At-gMuZSeQB_LpNP-M, linked from the "
                  "NJUPT-MCC/DualVGR-VideoQA README)")


class Bottleneck3d(nn.Module):
    """ResNeXt bottleneck: 1x1x1 reduce, grouped 3x3x3 (32 groups), 1x1x1 expand (x2), residual add."""

    expansion = 2

    def __init__(self, in_channels: int, width: int, stride: int = 1, cardinality: int = 32):
        super().__init__()
        mid, out = cardinality * (width // 32), width * self.expansion
        self.conv1 = nn.Conv3d(in_channels, mid, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm3d(mid)
        self.conv2 = nn.Conv3d(mid, mid, kernel_size=3, stride=stride, padding=1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm3d(mid)
        self.conv3 = nn.Conv3d(mid, out, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm3d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out:  # shortcut type B
            self.downsample = nn.Sequential(nn.Conv3d(in_channels, out, kernel_size=1, stride=stride, bias=False),
                                            nn.BatchNorm3d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNeXt3d(nn.Module):
    """3D ResNeXt trunk: [N, 3, 16, 112, 112] clips (RGB) -> [N, 2048] pooled features."""

    def __init__(self, blocks: tuple[int, ...] = (3, 4, 23, 3), cardinality: int = 32):
        super().__init__()
        self.conv1 = nn.Conv3d(3, 64, kernel_size=7, stride=(1, 2, 2), padding=3, bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        channels = 64
        for i, (width, n) in enumerate(zip((128, 256, 512, 1024), blocks)):
            stages = []
            for j in range(n):
                stages.append(Bottleneck3d(channels, width, 2 if i > 0 and j == 0 else 1, cardinality))
                channels = width * Bottleneck3d.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*stages))
        self.avgpool = nn.AvgPool3d((math.ceil(CLIP_FRAMES / 16), math.ceil(CLIP_SIZE / 32), math.ceil(CLIP_SIZE / 32)),
                                    stride=1)
        self.out_dim = channels

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(clips))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)


def _init_random(model: nn.Module) -> nn.Module:
    """He-normal convolutions, unit/zero BN (the checkpoint overwrites all of it)."""
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def random_resnext101() -> ResNeXt3d:
    """ResNeXt-101 with random weights in eval mode (tests and ``--random-weights``)."""
    return _init_random(ResNeXt3d()).eval()


def read_checkpoint(path: Path) -> dict:
    """``torch.load`` of a weights file (tensors only), with a one-line error for an unreadable one."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or foreign file
        raise DataFormatError(path, f"not a readable torch checkpoint ({type(err).__name__})") from None
    if not isinstance(obj, dict):
        raise DataFormatError(path, f"expected a dict of tensors, got {type(obj).__name__}")
    return obj


def _checkpoint_state(path: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's state_dict without the DataParallel ``module.`` prefix and without ``fc``."""
    obj = read_checkpoint(path)
    state = obj.get("state_dict", obj)
    if not isinstance(state, dict):
        raise DataFormatError(path, "'state_dict' is not a dict")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def load_state(model: nn.Module, state: dict[str, torch.Tensor], path: Path, what: str) -> nn.Module:
    """Load ``state`` into ``model`` after checking keys and shapes (BN ``num_batches_tracked`` may be absent)."""
    expected = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    missing, extra = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    if missing or extra:
        raise DataFormatError(path, f"not a {what} checkpoint: {len(missing)} missing key(s) (e.g. {missing[:1]}), "
                                    f"{len(extra)} unexpected (e.g. {extra[:1]})")
    wrong = [k for k, v in expected.items() if getattr(state[k], "shape", None) != v.shape]
    if wrong:
        raise DataFormatError(path, f"{wrong[0]} has shape {tuple(getattr(state[wrong[0]], 'shape', ()))}, "
                                    f"expected {tuple(expected[wrong[0]].shape)}")
    model.load_state_dict(state, strict=False)  # only the num_batches_tracked counters are left out
    return model.eval()


def load_resnext101(path: str | Path) -> ResNeXt3d:
    """ResNeXt-101 with the kenshohara Kinetics weights at ``path``, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError("resnext101-weights", path, WEIGHTS_SOURCE)
    return load_state(random_resnext101(), _checkpoint_state(path), path, "3D ResNeXt-101")
