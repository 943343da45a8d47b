"""Frozen CLIP towers as GALIP uses them.

Follows ``tobran/GALIP:code/models/GALIP.py`` (``CLIP_IMG_ENCODER``, ``CLIP_TXT_ENCODER``, ``CLIP_Mapper``) and
Tao et al., "GALIP: Generative Adversarial CLIPs for Text-to-Image Synthesis", CVPR 2023, Sec. 3 (Mate-D's CLIP-ViT
and Mate-G's bridge through the frozen CLIP-ViT). Every module here *shares* the tensors of the CLIP object it is
given (no copies), exactly as the official code does, and sets ``requires_grad=False`` on them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:  # importing ``clip`` at run time is not needed; the models take the object
    from clip.model import CLIP

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGE_TAPS = (1, 4, 8)  # 0-based resblocks after which CLIP_IMG_ENCODER taps the patch tokens
PROMPT_BLOCKS = (1, 2, 3, 4, 5, 6, 7, 8)  # 0-based resblocks that see one appended prompt token each


VISUAL_TRUNK = ("conv1", "class_embedding", "positional_embedding", "ln_pre", "transformer")


def _share(module: nn.Module, source: nn.Module, names: tuple[str, ...]) -> None:
    """Register ``source``'s tensors/submodules ``names`` on ``module`` in this order (shared, not copied)."""
    for name in names:
        setattr(module, name, getattr(source, name))


def _tokens_to_map(x_lnd: torch.Tensor, grid: int) -> torch.Tensor:
    """[L, B, W] tokens (class token first) -> [B, W, grid, grid] patch map."""
    patches = x_lnd.permute(1, 0, 2)[:, 1:, :]  # [B, grid*grid, W]
    return patches.permute(0, 2, 1).reshape(patches.shape[0], patches.shape[2], grid, grid).contiguous()


def _embed_patches(visual: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """[B, W, g, g] patch map -> [L=g*g+1, B, W]: class token, positional embedding, ``ln_pre``."""
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # [B, g*g, W]
    cls = visual.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device)
    x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
    return visual.ln_pre(x).permute(1, 0, 2)


class CLIPImageEncoder(nn.Module):
    """Frozen CLIP-ViT image tower of Mate-D (official ``CLIP_IMG_ENCODER``).

    Input: images in [-1, 1], [B, 3, H, W]. Output: ``(feats, emb)`` with the patch tokens after blocks 1, 4, 8
    stacked to [B, 3, 768, 7, 7] and the projected image embedding ``ln_post(cls) @ proj`` [B, 512].
    """

    def __init__(self, clip_model: CLIP) -> None:
        super().__init__()
        _share(self, clip_model.visual, (*VISUAL_TRUNK, "ln_post", "proj"))
        for p in self.parameters():
            p.requires_grad = False

    @property
    def dtype(self) -> torch.dtype:
        return self.conv1.weight.dtype

    @staticmethod
    def transf_to_CLIP_input(inputs: torch.Tensor) -> torch.Tensor:  # noqa: N802 (official name)
        """Official input transform, quirk kept: x*0.5+0.5, *nearest* resize to 224, then (x+1)*0.5 again.

        The effective pixel value fed to CLIP's normalisation is (x+3)/4 (spec text_to_image.md 2.3, trap 5.1).
        """
        if inputs.dim() != 4:
            raise ValueError("Expect the (B, C, X, Y) tensor.")
        mean = torch.tensor(CLIP_MEAN, device=inputs.device).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=inputs.device).view(1, 3, 1, 1)
        x = F.interpolate(inputs * 0.5 + 0.5, size=(224, 224))  # default mode: nearest
        return ((x + 1) * 0.5 - mean) / std

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv1(self.transf_to_CLIP_input(img).type(self.dtype))  # [B, 768, 7, 7]
        grid = x.size(-1)
        x = _embed_patches(self, x)
        taps = []
        for i, block in enumerate(self.transformer.resblocks):
            x = block(x)
            if i in IMAGE_TAPS:
                taps.append(_tokens_to_map(x, grid).type(img.dtype))
        cls = self.ln_post(x[0])  # class token, [B, W]
        if self.proj is not None:
            cls = cls @ self.proj
        return torch.stack(taps, dim=1), cls.type(img.dtype)


class CLIPTextEncoder(nn.Module):
    """Frozen CLIP text tower (official ``CLIP_TXT_ENCODER``).

    Input: tokens [B, 77]. Output: ``(sent_emb, words)``: EOT state of ``ln_final`` times ``text_projection``
    [B, 512], and the ``ln_final`` word states [B, 77, 512] (unused by GALIP's losses).
    """

    def __init__(self, clip_model: CLIP) -> None:
        super().__init__()
        _share(self, clip_model, ("transformer", "vocab_size", "token_embedding", "positional_embedding", "ln_final",
                                  "text_projection"))
        for p in self.parameters():
            p.requires_grad = False

    @property
    def dtype(self) -> torch.dtype:
        return self.transformer.resblocks[0].mlp.c_fc.weight.dtype

    def forward(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.token_embedding(text).type(self.dtype) + self.positional_embedding.type(self.dtype)
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)  # causal mask lives inside the resblocks
        x = self.ln_final(x).type(self.dtype)
        sent_emb = x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection
        return sent_emb, x


class CLIPMapper(nn.Module):
    """Frozen CLIP-ViT run on the generator's bridge feature (official ``CLIP_Mapper``; paper: Bridge-FP path).

    The 49 positions of the bridge map F [B, 768, 7, 7] replace CLIP's patch embedding (``conv1`` is held, as in the
    official module, but unused); class token, positional embedding and ``ln_pre`` follow. Before each of blocks
    1..8 prompt k-1 of ``prompts`` [B, 8, 768] is appended as a last token and dropped after the block; blocks 0, 9,
    10, 11 run plain. The 49 patch tokens come back as [B, 768, 7, 7]; there is no ``ln_post`` and no ``proj``.
    Runs in the CLIP weights' dtype and casts back to the input dtype.
    """

    def __init__(self, clip_model: CLIP) -> None:
        super().__init__()
        model = clip_model.visual
        _share(self, model, VISUAL_TRUNK)
        for p in model.parameters():  # the whole visual tower, ln_post and proj included (official)
            p.requires_grad = False

    @property
    def dtype(self) -> torch.dtype:
        return self.conv1.weight.dtype

    def forward(self, img: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
        x = img.type(self.dtype)
        prompts = prompts.type(self.dtype)
        grid = x.size(-1)
        x = _embed_patches(self, x)  # [50, B, 768]
        k = 0
        for i, block in enumerate(self.transformer.resblocks):
            if i in PROMPT_BLOCKS:
                x = block(torch.cat((x, prompts[:, k, :].unsqueeze(0)), dim=0))[:-1]
                k += 1
            else:
                x = block(x)
        return _tokens_to_map(x, grid).type(img.dtype)
