"""CLIP ViT-B/32 item features (``image_feat.npy``/``text_feat.npy``), as BeFA's official code makes them.

Official code (``fqldom/BeFA:src/common/abstract_recommender.py``): when the two .npy files are missing it runs
``clip.load('ViT-B/32')`` and stores the **raw** ``encode_image``/``encode_text`` outputs, 512-d, with **no L2
normalisation** (on a GPU the CLIP weights are fp16, so the stored values have fp16 precision). We do the same and
store them as float32. Differences from the official path, all on purpose:

* Images go through CLIP's own ``preprocess`` (shorter side to 224, centre crop 224x224, CLIP mean/std). The
  official loader (commented out in ``src/utils/dataloader.py``, so the shipped code cannot actually run this
  branch) used ``Resize((224, 224))`` + ``ToTensor()`` without CLIP's normalisation; ``official_resize=True``
  reproduces that.
* Texts are tokenised with ``truncate=True`` (the official ``clip.tokenize(texts)`` raises on texts over 77
  tokens; the commented-out loader instead cut every text to its first 20 characters).
* Row i is item i (validated contiguous ids); the official loader ordered rows by first appearance in the
  training interactions.

Input layout: a folder with ``items.tsv`` (tab-separated, header with ``itemID``, ``image`` and ``text``; image
paths relative to the folder; itemIDs exactly 0..n-1 in any order).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common.data.clip_weights import IMAGE_SIZE, import_clip, load_clip
from common.errors import DataFormatError, require_file

ITEMS_FILE = "items.tsv"
ITEM_COLUMNS = ("itemID", "image", "text")


def official_transform() -> Callable:
    """The commented-out official image pipeline: ``Resize((224, 224))`` + ``ToTensor()`` (no CLIP normalisation)."""
    from torchvision.transforms import Compose, Lambda, Resize, ToTensor

    return Compose([Lambda(lambda im: im.convert("RGB")), Resize((IMAGE_SIZE, IMAGE_SIZE)), ToTensor()])


@dataclass
class ItemTable:
    """Items of a feature-extraction folder, row i = item i."""

    image_paths: list[Path]
    texts: list[str]

    def __len__(self) -> int:
        return len(self.texts)


def read_items(folder: str | Path) -> ItemTable:
    """Parse and validate ``folder/items.tsv`` (see module docstring); image files must exist."""
    folder = Path(folder)
    path = require_file(folder / ITEMS_FILE, "item table (items.tsv)")
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t") if lines else []
    missing = [c for c in ITEM_COLUMNS if c not in header]
    if missing:
        raise DataFormatError(path, f"header lacks column(s) {', '.join(missing)} (found: {', '.join(header)})")
    col = {c: header.index(c) for c in ITEM_COLUMNS}
    rows: dict[int, tuple[str, str, int]] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise DataFormatError(path, f"line {lineno} has {len(fields)} tab-separated fields, expected {len(header)}")
        try:
            item = int(fields[col["itemID"]])
        except ValueError:
            raise DataFormatError(path, f"line {lineno}: itemID {fields[col['itemID']]!r} is not an integer") from None
        if item in rows:
            raise DataFormatError(path, f"line {lineno}: itemID {item} repeats line {rows[item][2]}")
        rows[item] = (fields[col["image"]].strip(), fields[col["text"]], lineno)
    if not rows:
        raise DataFormatError(path, "no items")
    n = len(rows)
    outside = sorted(i for i in rows if not 0 <= i < n)
    if outside:
        absent = min(set(range(n)) - set(rows))
        raise DataFormatError(path, f"itemIDs are not contiguous 0..{n - 1}: itemID {outside[0]} present, {absent} "
                                    "missing")
    image_paths, texts = [], []
    for item in range(n):
        image, text, lineno = rows[item]
        if not image:
            raise DataFormatError(path, f"item {item} (line {lineno}) has no image")
        image_path = folder / image
        if not image_path.is_file():
            raise DataFormatError(image_path, f"image of item {item} (line {lineno} of {path}) not found")
        image_paths.append(image_path)
        texts.append(text)
    return ItemTable(image_paths, texts)


def open_image(path: str | Path) -> Image.Image:
    """A fully decoded RGB PIL image; an unreadable file -> one-line DataFormatError naming it."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise DataFormatError(path, f"not a readable image ({type(err).__name__}: {err})") from None


def encode_pil_images(model: torch.nn.Module, preprocess: Callable, images: Sequence[Image.Image],
                      device: str | torch.device = "cpu") -> torch.Tensor:
    """Raw CLIP image features, float32 [len(images), 512], of one batch (no L2 normalisation)."""
    batch = torch.stack([preprocess(image) for image in images]).to(device)
    with torch.inference_mode():
        return model.encode_image(batch).float()


def encode_texts(model: torch.nn.Module, texts: Sequence[str], device: str | torch.device = "cpu") -> torch.Tensor:
    """Raw CLIP text features, float32 [len(texts), 512], of one batch (``clip.tokenize(truncate=True)``)."""
    tokens = import_clip().tokenize(list(texts), truncate=True).to(device)
    with torch.inference_mode():
        return model.encode_text(tokens).float()


def encode_items(model: torch.nn.Module, preprocess: Callable, items: ItemTable, batch_size: int = 64,
                 device: str | torch.device = "cpu", num_workers: int = 4,
                 progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(image features, text features), float32 [n_items, 512] each, batch by batch with a tqdm bar.

    ``num_workers`` threads decode the images of a batch.
    """
    from tqdm import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    image_feats, text_feats = [], []
    with ThreadPoolExecutor(max(1, num_workers)) as pool, \
            tqdm(total=len(items), desc="CLIP features", unit="item", disable=not progress) as bar:
        for start in range(0, len(items), batch_size):
            stop = min(start + batch_size, len(items))
            images = list(pool.map(open_image, items.image_paths[start:stop]))
            image_feats.append(encode_pil_images(model, preprocess, images, device).cpu())
            text_feats.append(encode_texts(model, items.texts[start:stop], device).cpu())
            bar.update(stop - start)
    return torch.cat(image_feats).numpy(), torch.cat(text_feats).numpy()


def _save_npy(path: Path, array: np.ndarray) -> None:
    """Write atomically (a temp file in the same folder, then rename), so no half-written feature file remains."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def extract_features(items: str | Path | ItemTable, clip_weights: str | Path, out_dir: str | Path,
                     batch_size: int = 64, device: str | torch.device = "cpu", official_resize: bool = False,
                     num_workers: int = 4, progress: bool = True) -> tuple[Path, Path]:
    """Write ``out_dir/image_feat.npy`` and ``out_dir/text_feat.npy`` (float32 [n_items, 512], raw CLIP outputs).

    ``items`` is a folder with ``items.tsv`` or an ``ItemTable``. Features are CLIP ViT-B/32's raw
    ``encode_image``/``encode_text`` outputs, NOT L2-normalised, as in the official code. Images: CLIP's
    ``preprocess`` (224x224 centre crop), or with ``official_resize`` the official Resize((224, 224)) + ToTensor.
    Texts: ``clip.tokenize(truncate=True)``. Items are validated (and every image checked to exist) before the
    model loads; a corrupt image raises a one-line DataFormatError naming the file. Returns the two paths.
    """
    table = items if isinstance(items, ItemTable) else read_items(items)
    model, preprocess = load_clip(clip_weights, device)
    if official_resize:
        preprocess = official_transform()
    image_feats, text_feats = encode_items(model, preprocess, table, batch_size, device, num_workers, progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "image_feat.npy", out / "text_feat.npy"
    for path, feats in zip(paths, (image_feats, text_feats)):
        _save_npy(path, feats.astype(np.float32, copy=False))
    return paths
