"""Strict loading of the official GALIP checkpoints onto our modules.

The official trainer (``tobran/GALIP:code/lib/utils.py:save_models_opt``) writes ``state_epoch_%03d.pth`` as
``{'model': {'netG', 'netD', 'netC'}, 'optimizers': {'optimizer_G', 'optimizer_D'}, 'epoch'}``; training ran under
DDP, so the keys very likely carry ``module.`` (``load_model_weights`` strips 7 characters when the first key
contains "module"). Test and sampling read only ``['model']['netG']``. NetG's state dict holds the frozen CLIP
visual tower as ``mapping.CLIP_ViT.*`` (possibly fp16): loading it overwrites the CLIP object that NetG shares.

Our modules keep the official attribute names, so the map is the identity after the optional prefix strip. It is
strict: every key consumed, every shape checked; otherwise a one-line ``DataFormatError`` names the file and the
first offending key. Values are cast to our tensors' dtype (fp32 on CPU).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from common.errors import DataFormatError

DDP_PREFIX = "module."


def _strip_ddp_prefix(state_dict: Mapping[str, object], where: str | Path, name: str) -> dict[str, object]:
    keys = list(state_dict)
    prefixed = [k.startswith(DDP_PREFIX) for k in keys]
    if not any(prefixed):
        return dict(state_dict)
    if not all(prefixed):
        first = keys[prefixed.index(False)]
        raise DataFormatError(where, f"{name}: key '{first}' lacks the '{DDP_PREFIX}' prefix the other keys carry")
    return {k[len(DDP_PREFIX):]: v for k, v in state_dict.items()}


def load_official_state(state_dict: Mapping[str, object], model: nn.Module, name: str,
                        path: str | Path = "<state_dict>") -> nn.Module:
    """Load an official state dict (with or without DDP ``module.``) into ``model`` strictly, in place.

    Raises ``DataFormatError("<path>: <name>: ...")`` on the first unexpected key (file order), non-tensor value,
    shape mismatch, or missing key (model order).
    """
    if not isinstance(state_dict, Mapping):
        raise DataFormatError(path, f"{name}: expected a state dict, got {type(state_dict).__name__}")
    incoming = _strip_ddp_prefix(state_dict, path, name)
    ours = model.state_dict()
    for key, value in incoming.items():
        if key not in ours:
            raise DataFormatError(path, f"{name}: unexpected key '{key}'")
        if not isinstance(value, torch.Tensor):
            raise DataFormatError(path, f"{name}: key '{key}' holds {type(value).__name__}, not a tensor")
        if tuple(value.shape) != tuple(ours[key].shape):
            raise DataFormatError(path, f"{name}: key '{key}' has shape {list(value.shape)}, "
                                        f"expected {list(ours[key].shape)}")
    for key in ours:
        if key not in incoming:
            raise DataFormatError(path, f"{name}: missing key '{key}'")
    cast = {k: v.to(dtype=ours[k].dtype) for k, v in incoming.items()}  # fp16 CLIP tensors -> our dtype
    model.load_state_dict(cast, strict=True)
    return model


def load_official_netG(state_dict: Mapping[str, object], netG: nn.Module,  # noqa: N802, N803
                       path: str | Path = "<state_dict>") -> nn.Module:
    """Load ``checkpoint['model']['netG']`` (525 tensors, CLIP visual tower included) into our ``NetG``."""
    return load_official_state(state_dict, netG, "netG", path)


def load_official_netD(state_dict: Mapping[str, object], netD: nn.Module,  # noqa: N802, N803
                       path: str | Path = "<state_dict>") -> nn.Module:
    """Load ``checkpoint['model']['netD']`` (17 tensors) into our ``NetD``."""
    return load_official_state(state_dict, netD, "netD", path)


def load_official_netC(state_dict: Mapping[str, object], netC: nn.Module,  # noqa: N802, N803
                       path: str | Path = "<state_dict>") -> nn.Module:
    """Load ``checkpoint['model']['netC']`` (2 tensors) into our ``NetC``."""
    return load_official_state(state_dict, netC, "netC", path)


def load_official_checkpoint(path: str | Path, netG: nn.Module, netD: nn.Module | None = None,  # noqa: N803
                             netC: nn.Module | None = None) -> dict[str, object]:
    """Read an official ``state_epoch_XXX.pth`` (``['model'][...]``) and load the given nets strictly.

    Returns the raw checkpoint (optimizer states and ``epoch`` left untouched). Only ``netG`` is required in the
    file when ``netD``/``netC`` are not given (the released sampling checkpoints may hold only what test.py reads).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "GALIP checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a format problem of this file
        raise DataFormatError(path, f"cannot read as a torch checkpoint: {err}") from err
    models = ckpt.get("model") if isinstance(ckpt, Mapping) else None
    if not isinstance(models, Mapping):
        raise DataFormatError(path, "no 'model' dict (expected the official {'model': {'netG', ...}} layout)")
    for name, net, loader in (("netG", netG, load_official_netG), ("netD", netD, load_official_netD),
                              ("netC", netC, load_official_netC)):
        if net is None:
            continue
        if name not in models:
            raise DataFormatError(path, f"no '{name}' under 'model'")
        loader(models[name], net, path)
    return dict(ckpt)
