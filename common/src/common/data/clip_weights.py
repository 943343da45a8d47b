"""OpenAI CLIP ViT-B/32 weights from a local file (never downloaded), and RANDOM stand-ins for tests.

``load_clip`` goes through ``clip.load(path, device, jit=False)`` (clip-anytorch, the openai/CLIP API), which
accepts OpenAI's TorchScript ``ViT-B-32.pt`` as well as a plain ``torch.save``-d state dict and rebuilds both with
``clip.model.build_model`` (fp16 weights on a GPU, float32 on the CPU, as ``clip.load`` does). Used by BeFA (item
features) and GALIP (generator bridge, Mate-D, text encoder, CLIP score).
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from common.errors import DataFormatError, WeightsNotFoundError

CLIP_WEIGHTS_KEY = "clip_weights"
CLIP_URL = (
    "https://openaipublic.azureedge.net/clip/models/"
    "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt"
)  # clip._MODELS["ViT-B/32"]
CLIP_SOURCE = f"OpenAI's CLIP release, file ViT-B-32.pt at {CLIP_URL} (clip._MODELS['ViT-B/32'])"
FEATURE_DIM = 512
IMAGE_SIZE = 224

# clip.model.CLIP(...) arguments of ViT-B/32, and a tiny variant for tests and embedded defaults: same classes,
# 224 px input, 32 px patches, 12 visual blocks (GALIP taps block 8), 512-d output and tokenizer; narrow widths.
VIT_B32 = dict(
    embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=32,
    context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8, transformer_layers=12,
)
VIT_B32_TINY = dict(VIT_B32, vision_width=64, transformer_width=64, transformer_heads=1, transformer_layers=2)


def import_clip():
    """The ``clip`` module (clip-anytorch), without its pkg_resources deprecation warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import clip
    return clip


def write_random_clip(path: str | Path, seed: int = 0, tiny: bool = False) -> Path:
    """Save RANDOM CLIP ViT-B/32 weights (a plain state dict, ``torch.save``) to ``path``; tests/defaults only.

    ``tiny=True`` uses ``VIT_B32_TINY`` (narrow widths, same architecture classes and input/output sizes), so
    ``load_clip`` takes the same path as for the real file. The global RNG is left untouched.
    """
    clip = import_clip()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = clip.model.CLIP(**(VIT_B32_TINY if tiny else VIT_B32))
    torch.save(model.state_dict(), path)
    return path


def _check_vit_b32(model: torch.nn.Module, path: Path) -> None:
    clip = import_clip()
    visual = model.visual
    if not isinstance(visual, clip.model.VisionTransformer) or visual.conv1.kernel_size != (32, 32):
        raise DataFormatError(path, "is a CLIP checkpoint but not ViT-B/32 (expected a ViT with 32 px patches)")
    dim = model.text_projection.shape[1]
    if visual.input_resolution != IMAGE_SIZE or dim != FEATURE_DIM:
        raise DataFormatError(path, f"expected CLIP ViT-B/32 ({IMAGE_SIZE} px input, {FEATURE_DIM}-d features), "
                                    f"got {visual.input_resolution} px, {dim}-d")


def load_clip(weights: str | Path, device: str | torch.device = "cpu",
              key: str = CLIP_WEIGHTS_KEY) -> tuple[torch.nn.Module, Callable]:
    """(model, preprocess) from a local CLIP ViT-B/32 file, via ``clip.load(path, device, jit=False)``.

    Missing file -> WeightsNotFoundError naming config key ``key`` and where to get the file; unreadable or
    non-ViT-B/32 file -> one-line DataFormatError. The model is returned in eval mode.
    """
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(key, path, CLIP_SOURCE)
    clip = import_clip()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch.jit.load.* is deprecated")
            model, preprocess = clip.load(str(path), device=device, jit=False)
    except KeyError as err:
        raise DataFormatError(path, f"not a CLIP state dict (missing key {err})") from None
    except pickle.UnpicklingError:  # torch.load(weights_only=True) refused the bytes: corrupt or not tensors only
        raise DataFormatError(path, "not a readable CLIP checkpoint: neither a TorchScript archive nor a state dict "
                                    "of tensors saved with torch.save (corrupt or truncated file?)") from None
    except Exception as err:  # RuntimeError, OSError, EOFError, ... for a truncated file or a non-CLIP state dict
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise DataFormatError(
            path, f"not a readable CLIP checkpoint, corrupt or truncated? ({type(err).__name__}: {first})") from None
    _check_vit_b32(model, path)
    return model.eval(), preprocess
