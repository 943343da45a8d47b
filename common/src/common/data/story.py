"""Five-frame story datasets: the AR-LDM HDF5 and the StoryDALL-E raw PororoSV / FlintstonesSV folders.

A story is 5 frames, each stored as a vertical *strip* of n square frames (n·S)×S×3 sampled from one
clip; a loader shows one S-row square of each strip, picked at random (also at test time, so an FID
reference depends on the seed).

AR-LDM HDF5 (``xichenpan/ARLDM:data_script/{pororo,flintstones}_hdf5.py``, read by ``datasets/pororo.py``):
groups ``train``/``val``/``test``, each with ``image0..image4`` (variable-length uint8 = one PNG per
story and frame) and ``text`` (utf-8, the 5 captions joined by ``|``, each stripped of newlines and tabs).
Channel order: the scripts pass RGB arrays to ``cv2.imencode``, which takes them for BGR, so the PNG
*files* hold R and B swapped; ``cv2.imdecode`` swaps them back. We decode with PIL and reverse the
channels (``bgr_png=True``, the default), so frames come out RGB as in AR-LDM.
The official files hold no labels. Our extension: an optional uint8 dataset ``<split>/labels`` of
shape [N, 5, C] (multi-hot characters per frame) and a root attribute ``characters`` (C names).
``write_arldm_hdf5`` writes both from any story source, e.g. the raw folders below, whose labels
come from StoryDALL-E's ``labels.npy`` / ``labels.pkl``.

Raw PororoSV (``adymaharana/storydalle:story-dalle/pororo_dataloader.py``): ``descriptions.npy``
(dict frame id -> [caption, ...], caption 0 is used), ``labels.npy`` (dict frame id -> 9-dim
multi-hot), ``img_cache4.npy`` (N first-frame paths, bytes), ``following_cache4.npy`` (N×4 paths of the
following frames), ``train_seen_unseen_ids.npy`` (train, val, test index arrays into the caches,
sorted on load), PNG strips at ``<root>/<path>``; frame id = path without ``.png``.

Raw FlintstonesSV (``xichenpan/ARLDM:data_script/flintstones_hdf5.py``): ``flintstones_annotations_v1-0.json``
(list of {globalID, description, ...}), ``train-val-test_split.json``, ``following_cache4.pkl``
(globalID -> the 4 next globalIDs), ``labels.pkl`` (globalID -> 7-dim multi-hot),
``video_frames_sampled/<globalID>.npy`` of (5, 128, 128, 3) uint8 RGB, stacked into a strip. As in
AR-LDM, a split keeps the ids (in file order) that have 4 followings.
"""

from __future__ import annotations

import io
import json
import pickle
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from PIL import Image

from common.errors import DataFormatError, require_file

FRAMES = 5
SPLITS = ("train", "val", "test")
# xichenpan/ARLDM:config.yaml new_tokens (order of the StoryDALL-E label vectors)
PORORO_CHARACTERS = ("pororo", "loopy", "eddy", "harry", "poby", "tongtong", "crong", "rody", "petty")
FLINTSTONES_CHARACTERS = ("fred", "barney", "wilma", "betty", "pebbles", "dino", "slate")


@dataclass(frozen=True)
class Story:
    """Five frames: RGB uint8 strips of shape (n_k·S, S, 3), captions, (5, C) uint8 labels or None, frame ids."""

    strips: tuple[np.ndarray, ...]
    captions: tuple[str, ...]
    labels: np.ndarray | None
    ids: tuple[str, ...]


def clean_caption(text: str) -> str:
    """AR-LDM's caption cleaning before joining with '|': drop newlines and tabs, strip."""
    return text.replace("\n", "").replace("\t", "").strip()


def _check_split(path: Path, split: str) -> None:
    if split not in SPLITS:
        raise DataFormatError(path, f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")


def _check_labels(path: Path, labels: np.ndarray, n_characters: int, where: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape[-1:] != (n_characters,) or not np.isin(labels, (0, 1)).all():
        raise DataFormatError(path, f"{where}: labels must be {n_characters}-dim multi-hot 0/1, got {labels.shape}")
    return labels.astype(np.uint8)


def _reason(err: Exception) -> str:
    """First line of an exception message, or its type name when it has none."""
    return str(err).splitlines()[0] if str(err).strip() else type(err).__name__


def decode_png(data: bytes, path: Path, where: str, bgr: bool = False) -> np.ndarray:
    """PNG bytes -> (H, W, 3) uint8 RGB; ``bgr`` reverses the channels of a cv2-written file."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            arr = np.asarray(im.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as err:
        raise DataFormatError(path, f"{where}: corrupt PNG ({_reason(err)})") from None
    return np.ascontiguousarray(arr[..., ::-1]) if bgr else arr


def encode_png(rgb: np.ndarray, bgr: bool = False) -> bytes:
    """(H, W, 3) uint8 -> PNG bytes; ``bgr`` swaps R and B first, as cv2.imencode does with an RGB array."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb[..., ::-1] if bgr else rgb)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _check_strip(strip: np.ndarray, path: Path, where: str) -> np.ndarray:
    h, w = strip.shape[:2]
    if strip.ndim != 3 or strip.shape[2] != 3 or w == 0 or h % w:
        raise DataFormatError(path, f"{where}: expected an (n*S, S, 3) strip of square frames, got shape {strip.shape}")
    return strip


def _story(path: Path, strips, captions, labels, ids) -> Story:
    widths = [s.shape[1] for s in strips]
    if len(set(widths)) != 1:
        raise DataFormatError(path, f"story {ids[0]}: frames differ in width {widths}")
    return Story(tuple(strips), tuple(captions), labels, tuple(ids))


def _open_h5(path: Path) -> h5py.File:
    require_file(path, "HDF5 file")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DataFormatError(path, f"unreadable or truncated HDF5 ({_reason(err)})") from None


class ARLDMStories:
    """The stories of one split of an AR-LDM HDF5 file, as a sequence of ``Story``.

    ``bgr_png`` (default True) undoes the R/B swap of files written by AR-LDM's cv2-based scripts.
    Labels come from the optional ``<split>/labels`` dataset; character names from the ``characters``
    attribute, else from ``characters`` (e.g. ``PORORO_CHARACTERS``).
    """

    def __init__(self, path: str | Path, split: str, characters: Sequence[str] | None = None, bgr_png: bool = True):
        self.path, self.split, self.bgr_png = Path(path), split, bgr_png
        _check_split(self.path, split)
        with _open_h5(self.path) as f:
            if split not in f:
                raise DataFormatError(self.path, f"group {split!r} missing (found: {', '.join(f.keys()) or 'none'})")
            group = f[split]
            names = [f"image{k}" for k in range(FRAMES)] + ["text"]
            for name in names:
                if name not in group:
                    raise DataFormatError(self.path, f"dataset {split}/{name} missing")
            lengths = {group[name].shape for name in names}
            if len(lengths) != 1 or len(next(iter(lengths))) != 1:
                raise DataFormatError(self.path, f"{split}: image0..4 and text must be 1-d, equal length: {lengths}")
            self.n = group["text"].shape[0]
            stored = f.attrs.get("characters")
            self.characters = tuple(str(c) for c in stored) if stored is not None else (
                tuple(characters) if characters is not None else None)
            self.labels = None
            if "labels" in group:
                if self.characters is None:
                    raise DataFormatError(self.path, f"{split}/labels present but no 'characters' attribute")
                labels = group["labels"][()]
                if labels.shape != (self.n, FRAMES, len(self.characters)):
                    raise DataFormatError(self.path, f"{split}/labels has shape {labels.shape}, expected "
                                                     f"({self.n}, {FRAMES}, {len(self.characters)})")
                self.labels = _check_labels(self.path, labels, len(self.characters), f"{split}/labels")
        self._h5: h5py.File | None = None

    def __len__(self) -> int:
        return self.n

    def __getstate__(self) -> dict:  # h5py handles do not cross process boundaries (DataLoader workers)
        return {**self.__dict__, "_h5": None}

    def __getitem__(self, i: int) -> Story:
        if not 0 <= i < self.n:
            raise IndexError(i)
        if self._h5 is None:
            self._h5 = _open_h5(self.path)
        group = self._h5[self.split]
        try:
            raw = [group[f"image{k}"][i] for k in range(FRAMES)]
            text = group["text"].asstr()[i]
        except OSError as err:
            raise DataFormatError(self.path, f"{self.split} row {i}: unreadable ({_reason(err)})") from None
        strips = tuple(
            _check_strip(decode_png(r.tobytes(), self.path, f"{self.split}/image{k}[{i}]", self.bgr_png),
                         self.path, f"{self.split}/image{k}[{i}]")
            for k, r in enumerate(raw)
        )
        captions = tuple(text.split("|"))
        if len(captions) != FRAMES:
            raise DataFormatError(self.path, f"{self.split}/text[{i}] holds {len(captions)} '|'-separated captions, "
                                             f"expected {FRAMES}")
        labels = None if self.labels is None else self.labels[i]
        return _story(self.path, strips, captions, labels, [f"{self.split}/{i}/{k}" for k in range(FRAMES)])


def _load_npy(path: Path, what: str, pickled: bool = True) -> np.ndarray:
    require_file(path, what)
    try:
        return np.load(path, allow_pickle=pickled, encoding="latin1")
    except (ValueError, OSError, EOFError, pickle.UnpicklingError) as err:
        raise DataFormatError(path, f"not a readable .npy file ({_reason(err)})") from None


def _load_dict_npy(path: Path, what: str) -> dict:
    arr = _load_npy(path, what)
    value = arr.item() if arr.dtype == object and arr.ndim == 0 else None
    if not isinstance(value, dict):
        raise DataFormatError(path, f"expected np.save of a dict, got a {arr.dtype} array of shape {arr.shape}")
    return value


def _first_caption(entry) -> str:
    """descriptions.npy maps a frame id to a list of captions; StoryDALL-E and AR-LDM use the first."""
    return entry if isinstance(entry, str) else _as_str(entry[0])


def _as_str(x) -> str:
    return x.decode("latin1") if isinstance(x, bytes) else str(x)


def _split_ids_pororo(path: Path, n: int, split: str) -> np.ndarray:
    arr = _load_npy(path, "split file (train_seen_unseen_ids.npy)")
    if len(arr) != 3:
        raise DataFormatError(path, f"expected (train, val, test) index arrays, got {len(arr)} entries")
    try:
        ids = np.sort(np.asarray(arr[SPLITS.index(split)], dtype=np.int64))
    except (TypeError, ValueError):
        raise DataFormatError(path, f"{split} ids are not integers") from None
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        raise DataFormatError(path, f"{split} ids must index the {n} entries of img_cache4.npy, "
                                    f"found {ids.min()}..{ids.max()}")
    return ids


class PororoSVStories:
    """One split of StoryDALL-E's raw PororoSV folder, as a sequence of ``Story`` (PNG strips are RGB)."""

    characters = PORORO_CHARACTERS

    def __init__(self, root: str | Path, split: str):
        self.root = Path(root)
        split_file = self.root / "train_seen_unseen_ids.npy"
        _check_split(split_file, split)
        self.descriptions = _load_dict_npy(self.root / "descriptions.npy", "descriptions.npy")
        labels = _load_dict_npy(self.root / "labels.npy", "labels.npy")
        firsts = _load_npy(self.root / "img_cache4.npy", "img_cache4.npy")
        followings = _load_npy(self.root / "following_cache4.npy", "following_cache4.npy")
        if firsts.ndim != 1 or followings.shape != (firsts.shape[0], FRAMES - 1):
            raise DataFormatError(self.root / "following_cache4.npy",
                                  f"expected shape ({firsts.shape[0]}, {FRAMES - 1}) to match img_cache4.npy, "
                                  f"got {followings.shape}")
        ids = _split_ids_pororo(split_file, firsts.shape[0], split)
        self.paths = [[_as_str(firsts[i]).lstrip("/")] + [_as_str(p).lstrip("/") for p in followings[i]] for i in ids]
        self.labels = {}
        for frame in {p for story in self.paths for p in story}:
            key = frame.removesuffix(".png")
            for name, table in (("descriptions.npy", self.descriptions), ("labels.npy", labels)):
                if key not in table:
                    raise DataFormatError(self.root / name, f"frame id {key!r} (from the caches) not found")
            self.labels[key] = _check_labels(self.root / "labels.npy", labels[key], len(PORORO_CHARACTERS), key)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Story:
        keys = tuple(p.removesuffix(".png") for p in self.paths[i])
        strips = []
        for p in self.paths[i]:
            png = require_file(self.root / p, "PNG strip")
            strips.append(_check_strip(decode_png(png.read_bytes(), png, "image"), png, "image"))
        captions = [clean_caption(_first_caption(self.descriptions[k])) for k in keys]
        return _story(self.root, strips, captions, np.stack([self.labels[k] for k in keys]), keys)


def _load_json(path: Path, what: str):
    require_file(path, what)
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise DataFormatError(path, f"not valid JSON ({_reason(err)})") from None


def _load_pickle_dict(path: Path, what: str) -> dict:
    require_file(path, what)
    try:
        with path.open("rb") as f:
            value = pickle.load(f)
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError) as err:
        raise DataFormatError(path, f"not a readable pickle ({_reason(err)})") from None
    if not isinstance(value, dict):
        raise DataFormatError(path, f"expected a pickled dict, got {type(value).__name__}")
    return value


class FlintstonesSVStories:
    """One split of the raw FlintstonesSV folder, as a sequence of ``Story`` (5-frame strips from the .npy files)."""

    characters = FLINTSTONES_CHARACTERS

    def __init__(self, root: str | Path, split: str):
        self.root = Path(root)
        split_file = self.root / "train-val-test_split.json"
        _check_split(split_file, split)
        splits = _load_json(split_file, "split file")
        if not isinstance(splits, dict) or split not in splits:
            raise DataFormatError(split_file, f"no {split!r} list")
        followings = _load_pickle_dict(self.root / "following_cache4.pkl", "following_cache4.pkl")
        labels = _load_pickle_dict(self.root / "labels.pkl", "labels.pkl")
        annotations_file = self.root / "flintstones_annotations_v1-0.json"
        annotations = _load_json(annotations_file, "annotations file")
        try:
            self.descriptions = {a["globalID"]: a["description"] for a in annotations}
        except (TypeError, KeyError):
            raise DataFormatError(annotations_file, "expected a list of {globalID, description, ...} records") from None
        self.stories = [[i, *followings[i]] for i in splits[split] if len(followings.get(i, ())) == FRAMES - 1]
        self.labels = {}
        for gid in {g for story in self.stories for g in story}:
            for name, table in (("flintstones_annotations_v1-0.json", self.descriptions), ("labels.pkl", labels)):
                if gid not in table:
                    raise DataFormatError(self.root / name, f"globalID {gid!r} (from the split) not found")
            self.labels[gid] = _check_labels(self.root / "labels.pkl", labels[gid], len(FLINTSTONES_CHARACTERS), gid)

    def __len__(self) -> int:
        return len(self.stories)

    def __getitem__(self, i: int) -> Story:
        strips = []
        for gid in self.stories[i]:
            path = self.root / "video_frames_sampled" / f"{gid}.npy"
            frames = _load_npy(path, "frame file", pickled=False)
            if frames.ndim != 4 or frames.shape[1] != frames.shape[2] or frames.shape[3] != 3 or frames.shape[0] == 0:
                raise DataFormatError(path, f"expected (n, S, S, 3) frames, got shape {frames.shape}")
            strips.append(np.concatenate(frames.astype(np.uint8), axis=0))
        captions = [clean_caption(str(self.descriptions[g])) for g in self.stories[i]]
        return _story(self.root, strips, captions, np.stack([self.labels[g] for g in self.stories[i]]), self.stories[i])


def write_arldm_hdf5(path: str | Path, splits: Mapping[str, Sequence[Story]],
                     characters: Sequence[str] | None = None) -> Path:
    """Write stories as AR-LDM's data scripts do (PNG with R/B swapped, '|'-joined cleaned captions).

    Adds ``<split>/labels`` and the ``characters`` attribute when ``characters`` is given and every
    story has labels. Strips of a frame id seen among the last few stories are encoded once.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cache: OrderedDict[str, np.ndarray] = OrderedDict()
    with h5py.File(path, "w") as f:
        if characters is not None:
            f.attrs["characters"] = np.array(list(characters), dtype=h5py.string_dtype())
        for split, stories in splits.items():
            _check_split(path, split)
            group = f.create_group(split)
            images = [group.create_dataset(f"image{k}", (len(stories),), dtype=h5py.vlen_dtype(np.uint8))
                      for k in range(FRAMES)]
            text = group.create_dataset("text", (len(stories),), dtype=h5py.string_dtype("utf-8"))
            labels = []
            for i in range(len(stories)):
                story = stories[i]
                for k, (frame_id, strip) in enumerate(zip(story.ids, story.strips)):
                    if frame_id not in cache:
                        cache[frame_id] = np.frombuffer(encode_png(strip, bgr=True), np.uint8)
                        if len(cache) > 4 * FRAMES:
                            cache.popitem(last=False)
                    images[k][i] = cache[frame_id]
                text[i] = "|".join(clean_caption(c) for c in story.captions)
                labels.append(story.labels)
            if characters is not None and labels and all(lab is not None for lab in labels):
                group.create_dataset("labels", data=np.stack(labels).astype(np.uint8))
    return path


class StoryDataset(torch.utils.data.Dataset):
    """Story items for training/evaluation: one S×S square per frame strip.

    ``crop="random"`` picks the square of strip k of item i from a generator seeded with
    (seed, epoch, i), so crops are reproducible and change with ``set_epoch``; ``crop="first"``
    always takes the top square. Item: ``images`` uint8 [5, 3, S, S] RGB (or ``transform`` applied
    to each (S, S, 3) uint8 frame and stacked), ``captions`` (5 str), ``labels`` float32 [5, C] when
    the source has labels, ``index``.
    """

    def __init__(self, stories: Sequence[Story], crop: str = "random", seed: int = 0,
                 transform: Callable[[np.ndarray], torch.Tensor] | None = None):
        if crop not in ("random", "first"):
            raise ValueError(f"crop must be 'random' or 'first', got {crop!r}")
        self.stories, self.crop, self.seed, self.transform, self.epoch = stories, crop, seed, transform, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.stories)

    def crop_indices(self, index: int, n_per_strip: Sequence[int]) -> np.ndarray:
        """Index of the square taken from each strip (n_k squares each) of item ``index``."""
        if self.crop == "first":
            return np.zeros(len(n_per_strip), dtype=np.int64)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return rng.integers(0, np.asarray(n_per_strip))

    def __getitem__(self, index: int) -> dict:
        story = self.stories[index]
        size = story.strips[0].shape[1]
        picks = self.crop_indices(index, [s.shape[0] // size for s in story.strips])
        frames = [s[j * size:(j + 1) * size] for s, j in zip(story.strips, picks)]
        if self.transform is None:
            images = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()
        else:
            images = torch.stack([self.transform(fr) for fr in frames])
        item = {"images": images, "captions": list(story.captions), "index": index}
        if story.labels is not None:
            item["labels"] = torch.from_numpy(story.labels.astype(np.float32))
        return item
