"""BeFA's similarity-based attribution analysis (spec §4.1), a CLIP ViT-B/32 grid-patch version.

Image: split the item image into a rows x cols grid (integer pixel boundaries), pass every patch through
CLIP's ``preprocess`` (so a patch is resized to 224 px and centre-cropped), encode all patches in one batch with
the same CLIP, and score patch k by cos(T(p_k), T(e)), where e is the item's content feature (by default the
whole image's CLIP feature; pass the stored ``image_feat.npy`` row to use that instead) and T is ``transform``:
the identity gives the "before" map, the trained model's projection + adapter (``adapter_transform``) the
"after" map. Text: the same with whitespace-separated words against the whole text's CLIP feature.

Scores are raw cosines (no normalisation); ``plot_image_attribution`` draws both maps on one shared colour scale.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from befa.features import encode_pil_images, encode_texts

Transform = Callable[[torch.Tensor], torch.Tensor]


def identity(features: torch.Tensor) -> torch.Tensor:
    """The "before" transform: raw CLIP features."""
    return features


def adapter_transform(project: nn.Module, adapter: nn.Module, item_embedding: torch.Tensor | None = None) -> Transform:
    """features [N, 512] -> adapter(project(features)) [N, d], in eval mode and without gradients.

    ``project`` is the base model's modality projection (e.g. ``image_trs``) and ``adapter`` its BeFA module for that
    modality. With ``item_embedding`` ([d], the item's ID embedding) the result is also gated by it, as the
    official LATTICE_BeFA/MGCN purifier does (E_id * BeFA(W e + b)).
    """
    params = [*project.parameters(), *adapter.parameters()]
    device = params[0].device if params else None

    def transform(features: torch.Tensor) -> torch.Tensor:
        modes = [(module, module.training) for module in (project, adapter)]
        for module, _ in modes:
            module.eval()
        try:
            with torch.inference_mode():
                out = adapter(project(features.to(device) if device is not None else features))
                return out * item_embedding.to(out.device) if item_embedding is not None else out
        finally:
            for module, training in modes:
                module.train(training)

    return transform


def _scores(parts: torch.Tensor, whole: torch.Tensor, transform: Transform) -> np.ndarray:
    """cos(T(parts_k), T(whole)) for every row k, float64 numpy."""
    with torch.inference_mode():
        mapped = transform(torch.cat([whole.reshape(1, -1), parts]).float()).float()
    return F.cosine_similarity(mapped[1:], mapped[:1], dim=1).double().cpu().numpy()


def grid_boxes(width: int, height: int, grid: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """PIL boxes (left, top, right, bottom) of a rows x cols grid, row-major, integer boundaries."""
    rows, cols = grid
    if rows < 1 or cols < 1 or rows > height or cols > width:
        raise ValueError(f"grid {grid} does not fit an image of {width}x{height} px")
    xs = np.round(np.linspace(0, width, cols + 1)).astype(int)
    ys = np.round(np.linspace(0, height, rows + 1)).astype(int)
    return [(int(xs[c]), int(ys[r]), int(xs[c + 1]), int(ys[r + 1])) for r in range(rows) for c in range(cols)]


@dataclass
class ImageAttribution:
    """Per-patch cosine scores [rows, cols] before and after the transform, and the patch boxes (row-major)."""

    before: np.ndarray
    after: np.ndarray
    boxes: list[tuple[int, int, int, int]]


@dataclass
class TextAttribution:
    """Per-word cosine scores [n_words] before and after the transform."""

    words: list[str]
    before: np.ndarray
    after: np.ndarray


def image_attribution(model: nn.Module, preprocess: Callable, image: Image.Image, grid: tuple[int, int] = (4, 4),
                      transform: Transform = identity, item_feature: torch.Tensor | None = None,
                      device: str | torch.device = "cpu") -> ImageAttribution:
    """Grid-patch attribution of ``image`` (see module docstring); all patches (and the image) in one CLIP batch."""
    image = image.convert("RGB")
    boxes = grid_boxes(image.width, image.height, grid)
    patches = [image.crop(box) for box in boxes]
    if item_feature is None:
        feats = encode_pil_images(model, preprocess, [image, *patches], device)
        whole, parts = feats[0], feats[1:]
    else:
        whole = torch.as_tensor(item_feature, dtype=torch.float32, device=device)
        parts = encode_pil_images(model, preprocess, patches, device)
    return ImageAttribution(_scores(parts, whole, identity).reshape(grid),
                            _scores(parts, whole, transform).reshape(grid), boxes)


def text_attribution(model: nn.Module, text: str, transform: Transform = identity,
                     item_feature: torch.Tensor | None = None, device: str | torch.device = "cpu") -> TextAttribution:
    """Word attribution of ``text``: every word and the whole text in one CLIP batch (truncated to 77 tokens)."""
    words = text.split()
    if not words:
        raise ValueError("text attribution needs a non-empty text")
    if item_feature is None:
        feats = encode_texts(model, [text, *words], device)
        whole, parts = feats[0], feats[1:]
    else:
        whole = torch.as_tensor(item_feature, dtype=torch.float32, device=device)
        parts = encode_texts(model, words, device)
    return TextAttribution(words, _scores(parts, whole, identity), _scores(parts, whole, transform))


def plot_image_attribution(image: Image.Image, attribution: ImageAttribution, path: str | Path,
                           figsize: tuple[float, float] = (12.0, 4.0), dpi: int = 100, alpha: float = 0.5,
                           cmap: str = "jet", title: str | None = None) -> Path:
    """Side-by-side PNG: image | before-map overlay | after-map overlay, one shared colour bar.

    The PNG is exactly figsize * dpi pixels. Uses matplotlib's Agg canvas directly (no pyplot, no backend switch).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    image = image.convert("RGB")
    extent = (0, image.width, image.height, 0)
    vmin = float(min(attribution.before.min(), attribution.after.min()))
    vmax = float(max(attribution.before.max(), attribution.after.max()))
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    axes[0].imshow(image)
    axes[0].set_title("item image")
    mappable = None
    for ax, scores, name in zip(axes[1:], (attribution.before, attribution.after), ("before BeFA", "after BeFA")):
        ax.imshow(image)
        mappable = ax.imshow(scores, extent=extent, alpha=alpha, cmap=cmap, vmin=vmin, vmax=vmax,
                             interpolation="nearest")
        ax.set_title(f"{name} (cosine to item feature)")
    for ax in axes:
        ax.set_axis_off()
    fig.colorbar(mappable, ax=list(axes), fraction=0.03, pad=0.02)
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path


def highlight_text(words: Sequence[str], scores: np.ndarray, fmt: str = "html") -> str:
    """Words highlighted by score (min-max scaled to the highlight strength), each followed by its score.

    ``fmt="html"``: one ``<p>`` of ``<span>``s (red background, score as tooltip and subscript).
    ``fmt="markdown"``: a two-column table ``| word | score |``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if len(words) != scores.size:
        raise ValueError(f"{len(words)} words but {scores.size} scores")
    if fmt == "markdown":
        rows = [f"| {w.replace('|', chr(92) + '|')} | {s:.4f} |" for w, s in zip(words, scores)]
        return "\n".join(["| word | score |", "|---|---:|", *rows])
    if fmt != "html":
        raise ValueError(f"fmt must be 'html' or 'markdown', got {fmt!r}")
    span = scores.max() - scores.min()
    strength = (scores - scores.min()) / span if span > 0 else np.zeros_like(scores)
    spans = [f'<span style="background-color: rgba(255, 0, 0, {a:.2f})" title="{s:.4f}">{html.escape(w)}'
             f"<sub>{s:.2f}</sub></span>" for w, s, a in zip(words, scores, strength)]
    return "<p>" + " ".join(spans) + "</p>"


def highlight_text_attribution(attribution: TextAttribution, fmt: str = "html") -> str:
    """Before and after maps of a text, highlighted (HTML: two labelled paragraphs; Markdown: one 3-column table)."""
    if fmt == "markdown":
        rows = [f"| {w.replace('|', chr(92) + '|')} | {b:.4f} | {a:.4f} |"
                for w, b, a in zip(attribution.words, attribution.before, attribution.after)]
        return "\n".join(["| word | before | after |", "|---|---:|---:|", *rows])
    before = highlight_text(attribution.words, attribution.before, fmt)
    after = highlight_text(attribution.words, attribution.after, fmt)
    return f"<div><b>before BeFA</b>{before}<b>after BeFA</b>{after}</div>"
