"""Editing: (source image, text) -> edited image; the fixed preview grid of a run; loading a trained editor.

NetG runs in eval mode (BatchNorm with running statistics; which mode the authors tested in is a spec gap, 3.3).
Images are [-1, 1] tensors; files are written like torchvision's ``save_image(normalize=True, value_range=(-1, 1))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torchvision import transforms

from common.checkpoints import read_checkpoint
from common.errors import DataFormatError
from common.reports import save_grid

from .config import DENetConfig, load_config
from .damsm import RNN_ENCODER
from .data import dataset, tokenizer
from .models import NetG
from .nets import Nets, build_nets, encode

__all__ = ["PreviewSet", "edit", "encode_texts", "load_editor", "read_source"]


@torch.inference_mode()
def edit(netG: NetG, sent: torch.Tensor, images: torch.Tensor) -> torch.Tensor:  # noqa: N803
    """Edited images [B, 3, H, W] in [-1, 1] of sources [B, 3, H, W] (H = W = imsize) under sentences [B, 256]."""
    was_training = netG.training
    netG.eval()
    out = netG(images, sent).float()
    netG.train(was_training)
    return out


def encode_texts(text_encoder: RNN_ENCODER, config: DENetConfig, texts: list[str], device: torch.device
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DAMSM (words, sentences, lengths) of raw texts; a text with no vocabulary word is a one-line error."""
    tok = tokenizer(config)
    pairs = []
    for text in texts:
        try:
            pairs.append(tok(text))
        except ValueError as err:
            raise DataFormatError(Path(config.data) / "captions_DAMSM.pickle", str(err)) from None
    tokens = torch.stack([t for t, _ in pairs]).to(device)
    lengths = torch.tensor([n for _, n in pairs], device=device)
    words, sent = encode(text_encoder, tokens, lengths)
    return words, sent, lengths


def read_source(path: str | Path, size: int = 256) -> torch.Tensor:
    """An RGB image file -> [1, 3, size, size] in [-1, 1] (resize of the shorter side, centre crop)."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "image not found")
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise DataFormatError(path, f"cannot read as an image ({err})") from None
    to_tensor = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor(),
                                    transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    return to_tensor(img).unsqueeze(0)


def load_editor(checkpoint: str | Path, config_path: str | Path | None, device: str, **overrides
                ) -> tuple[DENetConfig, Nets]:
    """Config (the checkpoint's own, or ``config_path``) and networks with the checkpoint's G/D/C weights."""
    from common.checkpoints import load_weights

    checkpoint = Path(checkpoint)
    state = read_checkpoint(checkpoint)
    if not isinstance(state, dict) or "model" not in state:
        raise DataFormatError(checkpoint, "not a DE-Net state_epoch checkpoint (no 'model' entry)")
    if config_path is None and "config" not in state:
        raise DataFormatError(checkpoint, "has no embedded config (an official checkpoint?); pass --config")
    base = {} if config_path is not None else state["config"]
    config = load_config(config_path, **{**base, **{k: v for k, v in overrides.items() if v is not None},
                                         "device": device})
    nets = build_nets(config, torch.device(device))
    for name in ("netG", "netD", "netC"):
        if name not in state["model"]:
            raise DataFormatError(checkpoint, f"no {name} in its 'model' entry")
        load_weights(getattr(nets, name), state["model"][name], checkpoint, config.data)
    return config, nets


@dataclass
class PreviewSet:
    """Fixed test sources (no augmentation) and the caption of the next source as each one's edit target."""

    images: torch.Tensor
    sent: torch.Tensor
    captions: list[str]

    @classmethod
    def build(cls, config: DENetConfig, text_encoder: RNN_ENCODER, device: torch.device) -> PreviewSet:
        ds = dataset(config, "test", augment=False)
        n = min(config.n_preview, len(ds))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            items = [ds[i] for i in range(n)]
        images = torch.stack([it["image"] for it in items]).to(device)
        captions = [items[(i + 1) % n]["caption"] for i in range(n)]
        tokens = torch.stack([items[(i + 1) % n]["tokens"] for i in range(n)]).to(device)
        lengths = torch.tensor([items[(i + 1) % n]["length"] for i in range(n)], device=device)
        return cls(images, encode(text_encoder, tokens, lengths)[1], captions)

    def save(self, netG: NetG, path: Path) -> Path:  # noqa: N803
        """Grid: row 1 the sources, row 2 their edits; the target captions go to ``<path>.txt``."""
        edited = edit(netG, self.sent, self.images)
        out = save_grid(torch.cat((self.images.cpu(), edited.clamp(-1, 1).cpu())), path, nrow=len(self.captions))
        path.with_suffix(".txt").write_text("\n".join(f"{i + 1}: {c}" for i, c in enumerate(self.captions)) + "\n")
        return out
