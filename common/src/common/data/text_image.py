"""DF-GAN / AttnGAN text-image datasets: CUB-200-2011 (``birds``) and COCO-2014 (``coco``).

Layout under a root such as ``data/birds`` (``tobran/DF-GAN:code/lib/datasets.py``,
``tobran/GALIP:code/lib/datasets.py``):

- ``train/filenames.pickle``, ``test/filenames.pickle``: pickled lists of keys;
- ``text/<key>.txt``: captions, one per line;
- ``captions_DAMSM.pickle``: ``[train_caps, test_caps, ixtoword, wordtoix]``, captions as lists of word ids;
- birds: ``CUB_200_2011/images/<key>.jpg`` with ``CUB_200_2011/images.txt`` (``<id> <key>.jpg``) and
  ``CUB_200_2011/bounding_boxes.txt`` (``<id> x y w h``); every image is cropped around its box;
- coco: ``images/train2014/<key>.jpg`` (train) and ``images/val2014/<key>.jpg`` (test) in DF-GAN,
  ``images/{train2014,val2014}/jpg/<key>.jpg`` in GALIP (``image_dir``).

Captions are the non-blank lines of a text file. ``ClipTokenizer`` is GALIP's tokenisation,
``DamsmTokenizer`` the AttnGAN/DF-GAN DAMSM one; ``prepare_damsm_captions`` writes
``captions_DAMSM.pickle`` for a new dataset. ``check_images_and_captions`` checks a split's files before a run
starts (image headers, captions), without decoding pixels.
"""

from __future__ import annotations

import logging
import pickle
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from common.data.clip_weights import import_clip
from common.errors import DataFormatError, require_file

SPLITS = ("train", "test")
CAPTIONS_PER_IMAGE = {"birds": 10, "coco": 5}  # cfg TEXT.CAPTIONS_PER_IMAGE
WORDS_NUM = 18  # cfg TEXT.WORDS_NUM
IMAGE_DIRS = {"birds": "CUB_200_2011/images", "coco": "images/{folder}"}  # DF-GAN; {folder} = COCO_FOLDERS[split]
GALIP_COCO_IMAGE_DIR = "images/{folder}/jpg"
COCO_FOLDERS = {"train": "train2014", "test": "val2014"}
CLIP_SOT, CLIP_EOT, CLIP_CONTEXT = 49406, 49407, 77
DAMSM_PICKLE = "captions_DAMSM.pickle"
log = logging.getLogger(__name__)


def _first_line(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _load_pickle(path: Path, what: str):
    require_file(path, what)
    try:
        with path.open("rb") as f:
            return pickle.load(f, encoding="latin1")  # the released pickles may come from Python 2
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, AttributeError, ImportError,
            IndexError) as err:
        raise DataFormatError(path, f"not a readable pickle ({_first_line(err)})") from None


def load_filenames(root: str | Path, split: str) -> list[str]:
    """Keys of ``<root>/<split>/filenames.pickle``."""
    path = Path(root) / split / "filenames.pickle"
    if split not in SPLITS:
        raise DataFormatError(path, f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    keys = _load_pickle(path, "split file")
    if not isinstance(keys, (list, tuple)) or not keys or not all(isinstance(k, str) for k in keys):
        raise DataFormatError(path, "expected a non-empty pickled list of str keys")
    return list(keys)


def _parse_rows(path: Path, n_fields: int, what: str) -> list[list[str]]:
    rows = [line.split() for line in require_file(path, what).read_text(encoding="utf-8").splitlines()]
    for i, row in enumerate(rows):
        if row and len(row) != n_fields:
            raise DataFormatError(path, f"line {i + 1}: expected {n_fields} fields, got {len(row)}")
    return [row for row in rows if row]


def load_cub_bboxes(cub_dir: str | Path) -> dict[str, tuple[int, int, int, int]]:
    """Key -> (x, y, w, h) from CUB's ``images.txt`` and ``bounding_boxes.txt``, matched by image id.

    Values are truncated to int as AttnGAN's ``load_bbox`` does (``pd.read_csv(...).astype(int)``).
    """
    images_txt, bbox_txt = Path(cub_dir) / "images.txt", Path(cub_dir) / "bounding_boxes.txt"
    keys = {}
    for i, (img_id, name) in enumerate(_parse_rows(images_txt, 2, "CUB images.txt")):
        if not name.endswith(".jpg"):
            raise DataFormatError(images_txt, f"line {i + 1}: {name!r} is not a .jpg path")
        keys[img_id] = name[:-4]
    boxes = {}
    for i, (img_id, *values) in enumerate(_parse_rows(bbox_txt, 5, "CUB bounding_boxes.txt")):
        try:
            boxes[img_id] = tuple(int(float(v)) for v in values)
        except ValueError:
            raise DataFormatError(bbox_txt, f"line {i + 1}: non-numeric box {' '.join(values)!r}") from None
    missing = [img_id for img_id in keys if img_id not in boxes]
    if missing:
        raise DataFormatError(bbox_txt, f"no box for image id {missing[0]} ({keys[missing[0]]}) of images.txt"
                                        f"{f' and {len(missing) - 1} more' if len(missing) > 1 else ''}")
    return {key: boxes[img_id] for img_id, key in keys.items()}


def cub_crop_box(bbox: Sequence[int], width: int, height: int) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) of DF-GAN's ``get_imgs`` crop: a square of half-side int(0.75·max(w, h)) around the
    box centre (int((2x+w)/2), int((2y+h)/2)), clipped to the image."""
    x, y, w, h = bbox
    r = int(0.75 * max(w, h))
    cx, cy = int((2 * x + w) / 2), int((2 * y + h) / 2)
    return max(0, cx - r), max(0, cy - r), min(width, cx + r), min(height, cy + r)


def load_image(path: str | Path, bbox: Sequence[int] | None = None) -> Image.Image:
    """The RGB image at ``path``, cropped by ``cub_crop_box`` when a CUB box (x, y, w, h) is given."""
    path = require_file(path, "image")
    try:
        with Image.open(path) as im:
            img = im.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise DataFormatError(path, f"unreadable or corrupt image ({_first_line(err)})") from None
    if bbox is None:
        return img
    box = cub_crop_box(bbox, *img.size)
    if box[2] <= box[0] or box[3] <= box[1]:
        size = f"{img.size[0]}x{img.size[1]}"
        raise DataFormatError(path, f"bounding box {tuple(bbox)} leaves nothing of the {size} image")
    return img.crop(box)


def read_captions(path: str | Path, n: int | None = None) -> list[str]:
    """The non-blank lines of a caption file (stripped); with ``n``, the first n, of which there must be n."""
    path = require_file(path, "caption file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataFormatError(path, f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    captions = [line.strip() for line in text.split("\n") if line.strip()]
    if not captions:
        raise DataFormatError(path, "holds no caption")
    if n is not None:
        if len(captions) < n:
            raise DataFormatError(path, f"holds {len(captions)} captions, {n} required")
        captions = captions[:n]
    return captions


def damsm_words(text: str) -> list[str]:
    """AttnGAN's caption words: lower-case, ``\\w+`` tokens, non-ASCII characters dropped (then empty words)."""
    words = (w.encode("ascii", "ignore").decode("ascii") for w in re.findall(r"\w+", text.lower()))
    return [w for w in words if w]


def build_damsm_captions(train_captions: Sequence[str], test_captions: Sequence[str]) -> list:
    """``[train_caps, test_caps, ixtoword, wordtoix]`` as AttnGAN's ``build_dictionary``: the vocabulary is
    every word of train then test in first-seen order, id 0 = ``<end>``; captions become lists of ids."""
    words = [[damsm_words(c) for c in caps] for caps in (train_captions, test_captions)]
    for caps, split in zip(words, SPLITS):
        empty = [i for i, c in enumerate(caps) if not c]
        if empty:
            raise ValueError(f"{split} caption {empty[0]} has no word")
    vocab = dict.fromkeys(w for caps in words for c in caps for w in c)
    ixtoword = {0: "<end>", **dict(enumerate(vocab, start=1))}
    wordtoix = {w: i for i, w in ixtoword.items()}
    train_caps, test_caps = ([[wordtoix[w] for w in c] for c in caps] for caps in words)
    return [train_caps, test_caps, ixtoword, wordtoix]


def prepare_damsm_captions(root: str | Path, captions_per_image: int) -> Path:
    """Write ``<root>/captions_DAMSM.pickle`` from the first ``captions_per_image`` captions of each key of
    both splits (image i's caption j at index i·n + j, as DF-GAN's ``get_caption`` indexes them)."""
    root = Path(root)
    captions = {}
    for split in SPLITS:
        captions[split] = []
        for key in load_filenames(root, split):
            path = root / "text" / f"{key}.txt"
            caps = read_captions(path, captions_per_image)
            for j, cap in enumerate(caps):
                if not damsm_words(cap):
                    raise DataFormatError(path, f"caption {j + 1} has no word")
            captions[split] += caps
    out = root / DAMSM_PICKLE
    with out.open("wb") as f:
        pickle.dump(build_damsm_captions(captions["train"], captions["test"]), f, protocol=4)
    return out


@dataclass(frozen=True)
class DamsmCaptions:
    """Content of ``captions_DAMSM.pickle``."""

    train: list[list[int]]
    test: list[list[int]]
    ixtoword: dict[int, str]
    wordtoix: dict[str, int]


def load_damsm_captions(path: str | Path) -> DamsmCaptions:
    """Read and check ``captions_DAMSM.pickle`` (a 4-list; the dicts inverse to each other, 0 = ``<end>``)."""
    path = Path(path)
    content = _load_pickle(path, "DAMSM captions file")
    if not isinstance(content, (list, tuple)) or len(content) != 4:
        raise DataFormatError(path, "expected [train_caps, test_caps, ixtoword, wordtoix]")
    train, test, ixtoword, wordtoix = content
    if not (isinstance(train, list) and isinstance(test, list) and isinstance(ixtoword, dict)
            and isinstance(wordtoix, dict)):
        raise DataFormatError(path, "expected lists of captions and dicts ixtoword, wordtoix")
    if ixtoword.get(0) != "<end>" or any(ixtoword.get(i) != w for w, i in wordtoix.items()):
        raise DataFormatError(path, "ixtoword and wordtoix are not inverse maps with 0 = '<end>'")
    return DamsmCaptions(train, test, ixtoword, wordtoix)


class DamsmTokenizer:
    """Caption -> (word ids int64 [words_num], length), DF-GAN's ``get_caption``.

    Words outside the vocabulary are dropped (as AttnGAN's id conversion does); a caption of more than
    ``words_num`` words keeps a random ``words_num``-subset in original order (torch's global RNG),
    a shorter one is zero-padded. A caption with no vocabulary word raises ValueError.
    """

    def __init__(self, wordtoix: Mapping[str, int], words_num: int = WORDS_NUM):
        self.wordtoix, self.words_num = dict(wordtoix), words_num

    @classmethod
    def from_pickle(cls, path: str | Path, words_num: int = WORDS_NUM) -> DamsmTokenizer:
        return cls(load_damsm_captions(path).wordtoix, words_num)

    def __call__(self, text: str) -> tuple[torch.Tensor, int]:
        ids = torch.tensor([self.wordtoix[w] for w in damsm_words(text) if w in self.wordtoix], dtype=torch.int64)
        if ids.numel() == 0:
            raise ValueError(f"no word of {text!r} is in the DAMSM vocabulary")
        if ids.numel() > self.words_num:
            ids = ids[torch.randperm(ids.numel())[: self.words_num].sort().values]
        tokens = torch.zeros(self.words_num, dtype=torch.int64)
        tokens[: ids.numel()] = ids
        return tokens, ids.numel()


class ClipTokenizer:
    """Caption -> (``clip.tokenize(text, truncate=True)[0]`` as int32 [77], length up to and with EOT), GALIP's
    ``get_caption``. (clip-anytorch returns int64; openai/CLIP int32 on torch >= 1.8, kept here.)"""

    def __init__(self):
        import_clip()  # fail here, not in a DataLoader worker, when clip is missing

    def __call__(self, text: str) -> tuple[torch.Tensor, int]:
        tokens = import_clip().tokenize(text, context_length=CLIP_CONTEXT, truncate=True)[0].to(torch.int32)
        return tokens, int(tokens.argmax()) + 1  # EOT has the largest id


def image_transform(size: int, augment: bool = True) -> Callable[[Image.Image], torch.Tensor]:
    """GALIP's pipeline (``code/lib/perpare.py``): shorter side to int(size·76/64) (bilinear), RandomCrop(size),
    RandomHorizontalFlip, ToTensor, Normalize(0.5, 0.5) -> [-1, 1]. ``augment=False``: CenterCrop, no flip."""
    from torchvision import transforms  # optional dependency: common[images]

    crop = (
        [transforms.RandomCrop(size), transforms.RandomHorizontalFlip()]
        if augment
        else [transforms.CenterCrop(size)]
    )
    return transforms.Compose([
        transforms.Resize(int(size * 76 / 64), interpolation=transforms.InterpolationMode.BILINEAR),
        *crop,
        transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    ])


class TextImageDataset(torch.utils.data.Dataset):
    """Items of one split: ``image`` float32 [3, S, S] in [-1, 1], ``caption``, ``tokens``/``length`` (when a
    tokenizer is given) and ``key``.

    ``captions="random"``: one caption drawn uniformly per call (torch's global RNG, which the DataLoader seeds
    per worker and epoch), as GALIP does. ``captions="all"``: every caption, ``tokens`` stacked [n, L] and
    ``length`` a tensor [n]. ``captions_per_image`` keeps the first n captions and requires n (DF-GAN's DAMSM
    path: ``CAPTIONS_PER_IMAGE[dataset]``); None keeps all non-blank lines (GALIP). ``image_dir`` is relative
    to ``root`` (default ``IMAGE_DIRS[dataset]``; ``GALIP_COCO_IMAGE_DIR`` for GALIP's COCO). Image and text
    files are checked to exist here; their contents when read.
    """

    def __init__(self, root: str | Path, split: str, dataset: str = "birds", image_size: int = 256,
                 tokenizer: Callable[[str], tuple[torch.Tensor, int]] | None = None, captions: str = "random",
                 captions_per_image: int | None = None, augment: bool = True, image_dir: str | None = None):
        self.root = Path(root)
        if dataset not in IMAGE_DIRS:
            raise DataFormatError(self.root, f"unknown dataset {dataset!r}; expected one of {', '.join(IMAGE_DIRS)}")
        if captions not in ("random", "all"):
            raise ValueError(f"captions must be 'random' or 'all', got {captions!r}")
        self.keys = load_filenames(self.root, split)
        self.split, self.dataset, self.tokenizer, self.captions = split, dataset, tokenizer, captions
        self.captions_per_image = captions_per_image
        self.image_dir = self.root / (image_dir or IMAGE_DIRS[dataset]).format(folder=COCO_FOLDERS[split])
        self.text_dir = self.root / "text"
        self.bboxes = load_cub_bboxes(self.root / "CUB_200_2011") if dataset == "birds" else None
        for key in self.keys:
            require_file(self.image_path(key), f"image of key {key!r}")
            require_file(self.text_dir / f"{key}.txt", f"caption file of key {key!r}")
            if self.bboxes is not None and key not in self.bboxes:
                raise DataFormatError(self.root / "CUB_200_2011" / "images.txt", f"no row for key {key!r}")
        self.transform = image_transform(image_size, augment)

    def image_path(self, key: str) -> Path:
        return self.image_dir / f"{key}.jpg"

    def __len__(self) -> int:
        return len(self.keys)

    def _tokenize(self, path: Path, captions: list[str], indices: list[int]) -> tuple[list[torch.Tensor], list[int]]:
        tokens, lengths = [], []
        for j in indices:
            try:
                t, n = self.tokenizer(captions[j])
            except ValueError as err:
                raise DataFormatError(path, f"caption {j + 1}: {err}") from None
            tokens.append(t)
            lengths.append(n)
        return tokens, lengths

    def __getitem__(self, index: int) -> dict:
        key = self.keys[index]
        text_path = self.text_dir / f"{key}.txt"
        captions = read_captions(text_path, self.captions_per_image)
        bbox = None if self.bboxes is None else self.bboxes[key]
        item = {"image": self.transform(load_image(self.image_path(key), bbox)), "key": key}
        indices = [int(torch.randint(len(captions), ()))] if self.captions == "random" else list(range(len(captions)))
        item["caption"] = captions[indices[0]] if self.captions == "random" else captions
        if self.tokenizer is not None:
            tokens, lengths = self._tokenize(text_path, captions, indices)
            if self.captions == "random":
                item["tokens"], item["length"] = tokens[0], lengths[0]
            else:
                item["tokens"], item["length"] = torch.stack(tokens), torch.tensor(lengths)
        return item


def _check_image_header(path: Path, bbox: Sequence[int] | None) -> None:
    """PIL identifies the file and reads its size from the header (no pixels decoded); CUB: the crop keeps some."""
    try:
        with Image.open(path) as im:
            size, fmt = im.size, im.format
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise DataFormatError(path, f"unreadable or corrupt image header ({_first_line(err)})") from None
    if fmt is None or min(size) < 1:
        raise DataFormatError(path, f"image header gives no format or an empty size ({size[0]}x{size[1]})")
    if bbox is not None:
        box = cub_crop_box(bbox, *size)
        if box[2] <= box[0] or box[3] <= box[1]:
            raise DataFormatError(path, f"bounding box {tuple(bbox)} leaves nothing of the {size[0]}x{size[1]} image")


def check_images_and_captions(*datasets: TextImageDataset, progress: bool = True) -> int:
    """Check every file the ``datasets`` (e.g. a run's train and test splits) will read, before a run starts; logs
    what it checked and the time it took, and returns the number of keys checked.

    Per key: the caption file is UTF-8 with at least one (or ``captions_per_image``) non-blank caption, and with a
    ``DamsmTokenizer`` every kept caption has a vocabulary word (what ``__getitem__`` would reject, checked without
    drawing from the RNG); the image's header is identified by PIL with a format and a non-empty size (the pixels
    are not decoded: a file corrupt past a valid header is found when read), and a CUB crop box leaves something of
    it. The first bad file raises DataFormatError naming it. ``progress``: a tqdm bar (shown on a terminal only).
    """
    from tqdm import tqdm

    start, n = time.perf_counter(), 0
    for dataset in datasets:
        vocabulary = dataset.tokenizer.wordtoix if isinstance(dataset.tokenizer, DamsmTokenizer) else None
        for key in tqdm(dataset.keys, desc=f"checking {dataset.split} images and captions", unit="image",
                        leave=False, disable=None if progress else True):
            text_path = dataset.text_dir / f"{key}.txt"
            captions = read_captions(text_path, dataset.captions_per_image)
            if vocabulary is not None:
                for j, caption in enumerate(captions):
                    if not any(w in vocabulary for w in damsm_words(caption)):
                        raise DataFormatError(text_path, f"caption {j + 1}: no word of {caption!r} is in the DAMSM "
                                                         "vocabulary")
            _check_image_header(dataset.image_path(key), None if dataset.bboxes is None else dataset.bboxes[key])
        n += len(dataset.keys)
    splits = " and ".join(d.split for d in datasets)
    log.info("data check: %d image headers and caption files of %s %s in %.2f s", n, datasets[0].root, splits,
             time.perf_counter() - start)
    return n
