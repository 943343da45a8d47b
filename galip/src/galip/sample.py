"""Sampling: caption -> image grid (``tobran/GALIP:code/src/sample.ipynb``; spec 2.8) and the fixed training previews.

z ~ N(0, I) with no truncation trick; one caption's sentence embedding repeated over the batch; NetG with
``eval=True``; the grid is written as torchvision's ``save_image(nrow=8, normalize=True, value_range=(-1, 1))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from common.data.text_image import ClipTokenizer, read_captions
from common.errors import DataFormatError
from common.reports import save_grid

from .config import GALIPConfig
from .models import CLIPTextEncoder, NetG


@torch.no_grad()
def generate(netG: NetG, text_encoder: CLIPTextEncoder, tokens: torch.Tensor, noise: torch.Tensor,  # noqa: N803
             ) -> torch.Tensor:
    """Images [B, 3, S, S] (unbounded, as NetG returns them) for CLIP tokens [B, 77] and noise [B, z_dim]: ordinary
    tensors without grad (``no_grad``, not ``inference_mode``), so callers may post-process them in place."""
    was_training = netG.training
    netG.eval()
    sent, _ = text_encoder(tokens.to(noise.device))
    images = netG.generate(noise, sent.float()).float()
    netG.train(was_training)
    return images


def compile_generator(netG: NetG) -> NetG:  # noqa: N803
    """``torch.compile`` NetG's forward in place (inductor, static shapes) for ``--compile``; returns ``netG``.

    Opt-in: each new batch size compiles once (~40 s for the birds model on the 2-core CPU), and the images are no
    longer bitwise those of the official code (float outputs within ~2e-6 relative; ~1e-5 of the uint8 values
    differ by 1). Measured on the 2-core CPU (README "Benchmark"): 1.15-1.19x at batch 8, 1.03-1.08x at batch 1.
    """
    netG.compile(dynamic=False)
    return netG


def sample_caption(netG: NetG, text_encoder: CLIPTextEncoder, text: str, n: int, z_dim: int,  # noqa: N803
                   device: torch.device, seed: int = 0) -> torch.Tensor:
    """``n`` images of one caption (fresh noise from ``seed``)."""
    tokens, _ = ClipTokenizer()(text)
    noise = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    return generate(netG, text_encoder, tokens.unsqueeze(0).expand(n, -1), noise)


@dataclass
class PreviewSet:
    """Fixed captions (first caption of the first train and test keys) and fixed noise for training previews."""

    captions: list[str]
    tokens: torch.Tensor
    noise: torch.Tensor
    text_encoder: CLIPTextEncoder

    @classmethod
    def build(cls, config: GALIPConfig, text_encoder: CLIPTextEncoder, device: torch.device) -> PreviewSet:
        from common.data.text_image import load_filenames

        half = max(config.n_preview // 2, 1)
        captions = []
        for split in ("train", "test"):
            for key in load_filenames(config.data, split)[:half]:
                captions.append(read_captions(Path(config.data) / "text" / f"{key}.txt")[0])
        tok = ClipTokenizer()
        tokens = torch.stack([tok(c)[0] for c in captions]).to(device)
        noise = torch.randn(len(captions), config.z_dim, generator=torch.Generator().manual_seed(config.seed))
        return cls(captions, tokens, noise.to(device), text_encoder)

    def save(self, netG: NetG, path: Path) -> Path:  # noqa: N803
        """Write the grid PNG and its captions (``.txt`` beside it, one per tile in grid order)."""
        grid = save_grid(generate(netG, self.text_encoder, self.tokens, self.noise), path)
        path.with_suffix(".txt").write_text("\n".join(self.captions) + "\n")
        return grid


def load_generator(checkpoint: str | Path, config_path: str | Path | None = None, device: str = "cpu",
                   **overrides) -> tuple[GALIPConfig, object]:
    """(config, nets) with NetG loaded strictly from ``checkpoint``: a galip run's ``last.pt`` (its config is used
    unless ``config_path`` is given) or an official ``state_epoch_*.pth`` / released file (needs ``config_path``)."""
    from common.checkpoints import read_checkpoint

    from .checkpoints import load_official_netG
    from .config import load_config
    from .nets import build_nets, load_clip_model

    path = Path(checkpoint)
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict) or "netG" not in ckpt["model"]:
        raise DataFormatError(path, "no ['model']['netG'] (expected a galip or official GALIP checkpoint)")
    if config_path is not None:
        config = load_config(config_path, **overrides)
    elif isinstance(ckpt.get("config"), dict):
        config = load_config(None, **{**ckpt["config"], **{k: v for k, v in overrides.items() if v is not None}})
    else:
        raise DataFormatError(path, "an official checkpoint carries no config; pass --config (configs/coco.yaml)")
    dev = torch.device(device)
    nets = build_nets(config, load_clip_model(config, dev), dev)
    load_official_netG(ckpt["model"]["netG"], nets.netG, path)
    nets.netG.eval()
    return config, nets
