"""``storyimager sample``: one story from a captions file, in any mode, written as a storyboard PNG.

``--captions story.txt`` holds K lines (one caption per frame). ``--frames DIR`` holds the given frames as
``1.png`` .. ``K.png`` (1-based, any size, resized to the model's resolution); continuation needs ``1.png``,
completion takes every frame present as given (``--given`` picks a subset).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from common.errors import DataFormatError

from .data import frame_transform
from .masking import frame_mask


def read_captions(path: str | Path, frames: int) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "captions file not found")
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if len(lines) != frames:
        raise DataFormatError(path, f"needs {frames} non-empty lines (one caption per frame), found {len(lines)}")
    return lines


def read_frame(path: Path, resolution: int) -> torch.Tensor:
    try:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise DataFormatError(path, f"not a readable image ({type(err).__name__})") from None
    return frame_transform(resolution)(rgb)


def given_frames(folder: str | Path | None, mode: str, frames: int, resolution: int,
                 given: list[int] | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(mask [K], given frames [K, 3, R, R] or None) for a mode; ``given`` are 1-based frame numbers."""
    if mode == "visualize":
        return frame_mask(mode, frames), None
    if folder is None:
        raise DataFormatError("--frames", f"--mode {mode} needs a folder of given frames (1.png .. {frames}.png)")
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(folder, "frames folder not found")
    present = [k for k in range(1, frames + 1) if (folder / f"{k}.png").is_file()]
    wanted = [1] if mode == "continue" else (given or present)
    missing = [k for k in wanted if k not in present]
    if missing:
        raise DataFormatError(folder, f"given frame(s) {', '.join(f'{k}.png' for k in missing)} not found")
    try:
        mask = frame_mask(mode, frames, [k - 1 for k in wanted])
    except ValueError as err:
        raise DataFormatError(folder, str(err)) from None
    images = torch.zeros(frames, 3, resolution, resolution)
    for k in wanted:
        images[k - 1] = read_frame(folder / f"{k}.png", resolution)
    return mask, images


def storyboard(frames: torch.Tensor, mask: torch.Tensor | None = None) -> Image.Image:
    """[K, 3, H, W] in [-1, 1] -> one row image; given frames (mask 0) get a grey border, targets none."""
    k, _, h, w = frames.shape
    pad = max(2, w // 32)
    canvas = np.full((h + 2 * pad, k * (w + 2 * pad), 3), 255, dtype=np.uint8)
    pixels = ((frames.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for i in range(k):
        x0 = i * (w + 2 * pad)
        if mask is not None and mask[i] == 0:
            canvas[:, x0:x0 + w + 2 * pad] = 128
        canvas[pad:pad + h, x0 + pad:x0 + pad + w] = pixels[i]
    return Image.fromarray(canvas)
