"""SYNTHETIC coloured shapes with captions, in the DF-GAN/AttnGAN CUB layout (read with dataset='birds').

Planted structure: each image shows one shape (circle, square, triangle, diamond) of one saturated colour,
small or large, at one position (left, right, top, bottom, center, with a little jitter) on a plain or
noisy, light or dark gray background. Its 10 captions name the colour, the shape and the position in varied
wording; some name the size and the background, and one always has more than 18 words (DAMSM's cut).
The S x S scene sits inside a checkerboard frame of random width, and ``bounding_boxes.txt`` holds a box
whose CUB crop (``common.data.text_image.cub_crop_box``) is exactly the scene, so a loader that skips
the crop sees the frame. ``metadata.json`` records per key the planted attributes, the shape's box in
scene (= cropped image) pixels, the scene box in the file and the CUB box. Train and test images are
drawn alike; ``captions_DAMSM.pickle`` is built by ``prepare_damsm_captions``.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from common.data.text_image import CAPTIONS_PER_IMAGE, prepare_damsm_captions

COLOURS = {"red": (220, 30, 30), "green": (30, 170, 40), "blue": (30, 60, 220), "yellow": (245, 215, 0),
           "purple": (140, 40, 190), "orange": (250, 130, 10)}
SHAPES = ("circle", "square", "triangle", "diamond")
POSITIONS = {"left": (0.25, 0.5), "right": (0.75, 0.5), "top": (0.5, 0.25), "bottom": (0.5, 0.75),
             "center": (0.5, 0.5)}  # shape centre / scene size (x, y)
POSITION_PHRASES = {
    "left": ("on the left", "at the left side", "in the left part of the picture"),
    "right": ("on the right", "at the right side", "in the right part of the picture"),
    "top": ("at the top", "near the top edge", "in the upper part of the picture"),
    "bottom": ("at the bottom", "near the bottom edge", "in the lower part of the picture"),
    "center": ("in the center", "in the middle", "at the center of the picture"),
}
SIZES = {"small": 0.12, "large": 0.19}  # shape radius / scene size
GRAYS = {"light": 190, "dark": 70}
NOISE_STD = 25.0
TEMPLATES = (
    "a {z} {c} {s} {p}",
    "a {c} {s} {p} on a {b} background",
    "there is a {c} {s} {p}",
    "A {c} {s}, {p}.",
    "this picture shows a {z} {c} {s} {p}",
    "{p} there is a {c} {s}",
    "the {s} {p} is {c}",
    "a {b} background with a {c} {s} {p}",
    "one {z} {c} {s} placed {p}",
    "the image contains a {c} {s} {p}",
    "a {c} colored {s} {p}",
)
LONG_TEMPLATE = "in this synthetic picture there is a {z} {c} {s} which is drawn {p} over a {b} background"
IMAGE_SIZES = (64, 256)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image-size", type=int, choices=IMAGE_SIZES, default=64, help="scene size S in pixels")
    parser.add_argument("--n-train", type=int, default=256)
    parser.add_argument("--n-test", type=int, default=64)


def shape_mask(shape: str, size: int, cx: int, cy: int, r: float) -> np.ndarray:
    """Boolean [size, size] mask of ``shape`` centred at (cx, cy) with half-extent r (triangle: apex up)."""
    y, x = np.mgrid[:size, :size].astype(np.float32)
    dx, dy = np.abs(x - cx), y - cy
    if shape == "circle":
        return dx**2 + dy**2 <= r**2
    if shape == "square":
        return (dx <= r) & (np.abs(dy) <= r)
    if shape == "diamond":
        return dx + np.abs(dy) <= r
    return (np.abs(dy) <= r) & (dx <= (dy + r) / 2)


def caption_colour(caption: str) -> str | None:
    """The planted colour a caption names (the first colour word), or None."""
    words = caption.lower().replace(",", " ").replace(".", " ").split()
    return next((w for w in words if w in COLOURS), None)


def dominant_colour(images: np.ndarray, min_saturation: float = 0.4, min_fraction: float = 0.01) -> list[str | None]:
    """Per image [N, H, W, 3] (floats in [0, 1]), the planted colour closest to the median of its saturated pixels.

    A pixel is saturated when max - min over its channels >= ``min_saturation`` (the gray backgrounds, even
    noisy, are not); an image with fewer than ``min_fraction`` saturated pixels gets None. A simple colour
    classifier for checking that a generator or an editor follows the caption's colour.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected images [N, H, W, 3], got {images.shape}")
    palette = np.array(list(COLOURS.values()), dtype=np.float32) / 255.0
    names = list(COLOURS)
    out: list[str | None] = []
    for img in images:
        pixels = img.reshape(-1, 3)
        sat = pixels[(pixels.max(axis=1) - pixels.min(axis=1)) >= min_saturation]
        if len(sat) < min_fraction * len(pixels):
            out.append(None)
            continue
        out.append(names[int(np.argmin(((palette - np.median(sat, axis=0)) ** 2).sum(axis=1)))])
    return out


def _checkerboard(height: int, width: int, cell: int) -> np.ndarray:
    y, x = np.mgrid[:height, :width]
    return np.where(((y // cell + x // cell) % 2)[..., None] == 0, 255, 0).astype(np.uint8).repeat(3, axis=2)


def _scene_bbox(size: int, mx: int, my: int) -> tuple[int, int, int, int]:
    """A CUB box (x, y, w, h) whose crop is exactly the scene at (mx, my): w = h = ceil(2S/3) gives r = S/2."""
    w = math.ceil(2 * size / 3)
    return mx + size // 2 - w // 2, my + size // 2 - w // 2, w, w


def _captions(rng: np.random.Generator, colour: str, shape: str, position: str, size: str,
              background: str) -> list[str]:
    templates = [TEMPLATES[i] for i in rng.permutation(len(TEMPLATES))[: CAPTIONS_PER_IMAGE["birds"] - 1]]
    templates.insert(int(rng.integers(len(templates) + 1)), LONG_TEMPLATE)
    phrases = POSITION_PHRASES[position]
    return [t.format(c=colour, s=shape, z=size, b=background, p=phrases[rng.integers(len(phrases))]) for t in templates]


def _draw(rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[str], dict]:
    """One image (checkerboard frame around the scene), its captions and its metadata."""
    colour, shape, position, size_name = (str(rng.choice(list(v))) for v in (COLOURS, SHAPES, POSITIONS, SIZES))
    gray_name, noisy = str(rng.choice(list(GRAYS))), bool(rng.integers(2))
    scene = np.full((size, size, 3), GRAYS[gray_name], dtype=np.float32)
    if noisy:
        scene += rng.normal(0.0, NOISE_STD, scene.shape).astype(np.float32)
    jitter = rng.integers(-(size // 32), size // 32 + 1, 2)
    cx, cy = (np.array(POSITIONS[position]) * size).astype(int) + jitter
    mask = shape_mask(shape, size, cx, cy, SIZES[size_name] * size)
    scene[mask] = COLOURS[colour]
    ys, xs = np.nonzero(mask)

    unit = size // 8  # frame widths are multiples of 8 px (JPEG blocks), so the scene edge stays clean
    mx, my = (int(m) * unit for m in rng.integers(1, 4, 2))
    canvas = _checkerboard(size + 2 * my, size + 2 * mx, unit)
    canvas[my:my + size, mx:mx + size] = np.clip(np.rint(scene), 0, 255).astype(np.uint8)
    background = f"{'noisy' if noisy else 'plain'} {gray_name} gray"
    meta = {
        "colour": colour, "rgb": list(COLOURS[colour]), "shape": shape, "position": position, "size": size_name,
        "background": background, "shape_bbox": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1],
        "scene_box": [mx, my, mx + size, my + size], "cub_bbox": list(_scene_bbox(size, mx, my)),
    }
    return canvas, _captions(rng, colour, shape, position, size_name, background), meta


def write(out: Path, seed: int = 0, image_size: int = 64, n_train: int = 256, n_test: int = 64) -> Path:
    """Write the dataset into ``out`` (created; the root a loader takes, like ``data/birds``) and return it."""
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size must be one of {IMAGE_SIZES}, got {image_size}")
    out = Path(out)
    cub = out / "CUB_200_2011"
    rng = np.random.default_rng(seed)
    keys, images_txt, bbox_txt, items = [], [], [], {}
    for i in range(n_train + n_test):
        canvas, captions, meta = _draw(rng, image_size)
        cls = 1 + list(COLOURS).index(meta["colour"]) * len(SHAPES) + SHAPES.index(meta["shape"])
        name = f"{meta['colour']}_{meta['shape']}"
        key = f"{cls:03d}.{name}/{name}_{i + 1:04d}"
        (cub / "images" / key).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(canvas).save(cub / "images" / f"{key}.jpg", quality=95, subsampling=0)
        (out / "text" / key).parent.mkdir(parents=True, exist_ok=True)
        (out / "text" / f"{key}.txt").write_text("\n".join(captions) + "\n", encoding="utf-8")
        images_txt.append(f"{i + 1} {key}.jpg\n")
        bbox_txt.append(f"{i + 1} " + " ".join(f"{v:.1f}" for v in meta["cub_bbox"]) + "\n")
        items[key] = {"split": "train" if i < n_train else "test", **meta}
        keys.append(key)
    (cub / "images.txt").write_text("".join(images_txt))
    (cub / "bounding_boxes.txt").write_text("".join(bbox_txt))
    for split, split_keys in (("train", keys[:n_train]), ("test", keys[n_train:])):
        (out / split).mkdir(exist_ok=True)
        with (out / split / "filenames.pickle").open("wb") as f:
            pickle.dump(split_keys, f, protocol=4)
    prepare_damsm_captions(out, CAPTIONS_PER_IMAGE["birds"])
    metadata = {"synthetic": True, "seed": seed, "image_size": image_size, "colours": COLOURS, "shapes": SHAPES,
                "positions": list(POSITIONS), "sizes": list(SIZES), "items": items}
    (out / "metadata.json").write_text(json.dumps(metadata, indent=1, sort_keys=True))
    return out
