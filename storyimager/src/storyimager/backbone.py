"""The pretrained latent diffusion backbone: a Stable Diffusion 1.5 folder in the diffusers layout, read from disk.

``load_backbone`` reads ``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/`` and ``scheduler/`` with
``from_pretrained(local_files_only=True)``; a missing part is a one-line error naming the file and where the
weights come from. ``random_backbone`` builds a *randomly initialised* one of any shape in memory (the paper-scale
bench); ``write_tiny_backbone`` writes a small one with ``save_pretrained`` (the embedded default and the tests load
it through the same path).
The surgery StoryImager needs on top: a wider ``conv_in`` whose new input channels start at zero
(``widen_conv_in``), AR-LDM's character tokens (``add_characters``) and CLIP positions extended to AR-LDM's
caption length (``extend_positions``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from common.errors import DataFormatError, WeightsNotFoundError

SD15_SOURCE = ("the diffusers folder of Stable Diffusion 1.5 "
               "(huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5)")
PARTS = {"unet": "config.json", "vae": "config.json", "text_encoder": "config.json", "tokenizer": None,
         "scheduler": "scheduler_config.json"}


@dataclass
class Backbone:
    unet: nn.Module
    vae: nn.Module
    text_encoder: nn.Module
    tokenizer: object
    scheduler_config: dict


def check_folder(root: str | Path) -> None:
    """One-line error when ``root`` is not a diffusers folder with every part (nothing is read)."""
    root = Path(root)
    if not root.is_dir():
        raise WeightsNotFoundError("pretrained", root, SD15_SOURCE)
    for part, config in PARTS.items():
        need = root / part / config if config else root / part
        if not need.exists():
            raise DataFormatError(need, f"missing from the backbone folder; expected {SD15_SOURCE}")


def frame_latent_size(resolution: int, vae_levels: int, unet_levels: int) -> int:
    """A frame's latent side at ``resolution`` for a VAE and a UNet of that many resolution levels; ValueError when the
    VAE's downsampling does not divide it or the UNet's cannot tile the frame latents."""
    factor = 2 ** (vae_levels - 1)
    if resolution % factor:
        raise ValueError(f"resolution {resolution} is not divisible by the VAE factor {factor}")
    latent = resolution // factor
    levels = 2 ** (unet_levels - 1)
    if latent % levels:
        raise ValueError(f"resolution {resolution} gives frame latents of {latent} px, which {levels}x UNet "
                         f"downsampling cannot tile; pick a resolution divisible by {factor * levels}")
    return latent


def load_backbone(root: str | Path) -> Backbone:
    """Read the diffusers folder ``root`` (offline)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    root = Path(root)
    check_folder(root)
    try:
        unet = UNet2DConditionModel.from_pretrained(root / "unet", local_files_only=True)
        vae = AutoencoderKL.from_pretrained(root / "vae", local_files_only=True)
        text = CLIPTextModel.from_pretrained(root / "text_encoder", local_files_only=True)
        tokenizer = CLIPTokenizer.from_pretrained(root / "tokenizer", local_files_only=True)
    except (OSError, ValueError, RuntimeError) as err:
        raise DataFormatError(root, f"not a readable diffusers backbone ({' '.join(str(err).split())[:200]})") from None
    scheduler_config = json.loads((root / "scheduler" / PARTS["scheduler"]).read_text())
    return Backbone(unet, vae, text, tokenizer, scheduler_config)


def _tiny_tokenizer_files(out: Path, words: list[str]) -> None:
    """A CLIP BPE vocabulary of the letters, digits and punctuation (any lowercase text tokenizes) plus one
    token per word of ``words``: each word's merges join, left to right, the pieces the earlier merges leave of it,
    and rank after them, so every word comes out whole (BPE applies merges by rank, not by word)."""
    out.mkdir(parents=True, exist_ok=True)
    symbols = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-")
    vocab: dict[str, int] = {}
    for s in symbols + [s + "</w>" for s in symbols]:
        vocab.setdefault(s, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in sorted(set(words)):
        parts = _bpe(list(word[:-1]) + [word[-1] + "</w>"], merges)
        while len(parts) > 1:
            merges.append((parts[0], parts[1]))
            parts = [parts[0] + parts[1]] + parts[2:]
            vocab.setdefault(parts[0], len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    (out / "vocab.json").write_text(json.dumps(vocab))
    (out / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))


def _bpe(parts: list[str], merges: list[tuple[str, str]]) -> list[str]:
    """``parts`` after byte-pair encoding with ``merges`` (lowest rank first, as CLIP's tokenizer)."""
    rank = {pair: i for i, pair in enumerate(merges)}
    while len(parts) > 1:
        i = min(range(len(parts) - 1), key=lambda j: rank.get((parts[j], parts[j + 1]), len(rank)))
        if (parts[i], parts[i + 1]) not in rank:
            break
        parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2:]
    return parts


def sd15_scheduler():
    """Stable Diffusion 1.5's noise schedule (the values of its ``scheduler_config.json``, ``clip_sample`` false
    included)."""
    from diffusers import PNDMScheduler

    scheduler = PNDMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear", set_alpha_to_one=False, skip_prk_steps=True,
                              steps_offset=1)
    scheduler.register_to_config(clip_sample=False)
    return scheduler


def tiny_tokenizer(folder: Path, words: list[str]):
    """A CLIP tokenizer of the letters, digits, punctuation and ``words`` (its files written into ``folder``)."""
    from transformers import CLIPTokenizer

    _tiny_tokenizer_files(folder, words)
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))


def random_backbone(unet: dict, vae: dict, text: dict, tokenizer, seed: int = 0) -> Backbone:
    """A RANDOMLY INITIALISED backbone of the Stable Diffusion classes (4-channel latents, RGB frames), in memory:
    ``unet``, ``vae`` and ``text`` are the constructor arguments of the UNet, the VAE and the CLIP text config."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    return Backbone(
        UNet2DConditionModel(in_channels=4, out_channels=4, **unet),
        AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, **vae),
        CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                     eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **text)),
        tokenizer, dict(sd15_scheduler().config))


def write_tiny_backbone(out: str | Path, words: list[str], seed: int = 0, width: int = 32, heads: int = 8) -> Path:
    """A RANDOMLY INITIALISED Stable-Diffusion-shaped backbone in the diffusers layout (2 UNet levels, VAE with
    downsampling factor 2, 2-layer CLIP text encoder of width ``width``), written with ``save_pretrained``.
    ``heads``: attention heads of the UNet's transformer blocks (SD 1.5's 8 by default; the learning test uses 2,
    which makes a training step ~1.8x faster on CPU)."""
    out = Path(out)
    tok_dir = out / "tokenizer"
    tokenizer = tiny_tokenizer(tok_dir / "files", words)
    tokenizer.save_pretrained(tok_dir)
    parts = random_backbone(
        dict(sample_size=16, layers_per_block=1, block_out_channels=(width, 2 * width),
             down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
             up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=width, attention_head_dim=heads,
             norm_num_groups=8),
        dict(block_out_channels=(width, 2 * width), down_block_types=("DownEncoderBlock2D",) * 2,
             up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=8, sample_size=32),
        dict(hidden_size=width, intermediate_size=4 * width, num_hidden_layers=2, num_attention_heads=4,
             max_position_embeddings=77),
        tokenizer, seed)
    parts.unet.save_pretrained(out / "unet")
    parts.vae.save_pretrained(out / "vae")
    parts.text_encoder.save_pretrained(out / "text_encoder")
    sd15_scheduler().save_pretrained(out / "scheduler")
    (out / "RANDOM_WEIGHTS.txt").write_text("Randomly initialised stand-in backbone (not Stable Diffusion).\n")
    return out


def widen_conv_in(unet: nn.Module, in_channels: int) -> None:
    """Replace ``conv_in`` by one with ``in_channels`` inputs: the pretrained 4 channels keep their weights, the new
    ones start at zero, so the output is unchanged at initialisation."""
    old = unet.conv_in
    if in_channels < old.in_channels:
        raise ValueError(f"cannot narrow conv_in from {old.in_channels} to {in_channels} channels")
    new = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding)
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, : old.in_channels] = old.weight
        new.bias.copy_(old.bias)
    unet.conv_in = new
    unet.register_to_config(in_channels=in_channels)


def add_characters(tokenizer, text_encoder: nn.Module, names: list[str]) -> list[int]:
    """AR-LDM's character tokens: each name becomes one new token whose embedding row is drawn from N(0, 1), as in
    AR-LDM (its pinned transformers 4.24 resized into a bare ``nn.Embedding`` and kept that layer's N(0, 1) init for
    the new rows; transformers >= 4.46 would start every new row at the mean embedding, all names alike). Draws from
    the global RNG (``build_model`` seeds it); returns the ids of the names that were new."""
    before = len(tokenizer)
    tokenizer.add_tokens(list(names))
    text_encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    with torch.no_grad():
        text_encoder.get_input_embeddings().weight[before:].normal_()
    return list(range(before, len(tokenizer)))


def extend_positions(text_encoder: nn.Module, length: int) -> int:
    """Grow CLIP's position table to ``length`` (AR-LDM: 85 / 91); new rows start as copies of the last one.
    Returns the number of new rows."""
    emb = text_encoder.get_input_embeddings().weight
    table = text_encoder.embeddings.position_embedding if hasattr(text_encoder, "embeddings") else None
    if table is None:
        raise ValueError("text encoder has no CLIP position embedding table")
    old = table.num_embeddings
    if length <= old:
        return 0
    new = nn.Embedding(length, table.embedding_dim, device=emb.device, dtype=emb.dtype)
    with torch.no_grad():
        new.weight[:old] = table.weight
        new.weight[old:] = table.weight[-1]
    text_encoder.embeddings.position_embedding = new
    text_encoder.embeddings.register_buffer("position_ids", torch.arange(length, device=emb.device)[None],
                                            persistent=False)
    text_encoder.config.max_position_embeddings = length
    return length - old


def synthetic_words() -> list[str]:
    """Every word of the ``common.synthetic.story`` captions (the tiny tokenizer's whole-word tokens)."""
    from common.synthetic.story import ACTIONS, BACKGROUNDS

    text = " ".join([*ACTIONS, *BACKGROUNDS, "and the a"])
    return sorted(set(text.split()))
