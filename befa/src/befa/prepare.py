"""``befa prepare``: the BeFA paper's datasets (TMALL, MicroLens, H&M) -> an MMRec dataset folder.

Input, the layout the BeFA authors' code reads (``fqldom/BeFA:src/utils/dataset.py``, ``src/configs/dataset/*.yaml``
and the commented-out item loader in ``src/utils/dataloader.py``):

* an interaction file (``inter.csv``; MicroLens ``inter_small.csv``), comma-separated with a header: a user column
  (``userID``, or ``user_id`` for MicroLens), an item column (``itemID`` / ``item_id``), optionally ``x_label``
  (0/1/2 = train/valid/test, the split the official loader uses), ``timestamp`` and ``rating``;
* an item file (TMALL ``item.csv``, MicroLens ``product_info.csv``), comma-separated with a header: the item column
  and the item text (``prod_info`` in the official loader; ``text``, ``title`` or ``description`` are taken too);
* an image folder (TMALL ``image_new/``, MicroLens ``images_small/``) holding ``<itemID>.jpg`` (other image
  extensions, and one level of sub-folders as in the H&M Kaggle release, are searched as well).

A header with tabs and no comma is read as tab-separated. Output in ``out`` (named ``<name>``):

* ``<name>.inter``: TSV ``userID itemID rating timestamp x_label``; ids re-indexed 0-based in increasing order of
  the original integer ids (files whose ids already are 0..n-1 keep them); ``rating`` 1 where the file has none,
  ``timestamp`` 0 likewise. Split: the file's ``x_label`` when it has one; otherwise MMRec's rule
  (``common.data.mmrec.random_split_labels``, spec §1.1): duplicate (user, item, timestamp) rows dropped, then per
  user at random, n < 10 -> n-2 / 1 / 1, else floor(0.2 n) held out, half of it (rounded down) valid, with seed
  ``seed`` (999); ``k_core`` > 0 first applies MMRec's iterative k-core filter (off by default).
* ``items.tsv`` (``itemID image text``, image paths relative to ``out``), which ``befa extract-features`` reads,
  and ``u_id_mapping.csv`` / ``i_id_mapping.csv`` (original id -> new id).
* with ``clip_weights``: ``image_feat.npy`` / ``text_feat.npy`` (CLIP ViT-B/32, 512-d, ``befa.features``).

Every file is validated before anything is written (ids, split labels, an item row and a decodable image for every
item); the folder is built under a scratch name next to ``out`` and renamed at the end, so an error leaves no
partly written ``out``. Errors are one-line ``DataFormatError``s naming the file and line.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from befa.features import ITEMS_FILE, extract_features, open_image
from common.data.clip_weights import CLIP_SOURCE, CLIP_WEIGHTS_KEY
from common.data.mmrec import k_core_mask, random_split_labels
from common.errors import DataFormatError, WeightsNotFoundError, require_file

USER_COLUMNS = ("userID", "user_id", "user")
ITEM_COLUMNS = ("itemID", "item_id", "item")
TEXT_COLUMNS = ("prod_info", "text", "title", "description")
SPLIT_COLUMN, TIME_COLUMN, RATING_COLUMN = "x_label", "timestamp", "rating"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
INTEGER = r"\d{1,18}(?:\.0*)?"  # "12" or "12.0" (a column pandas once wrote as floats)


@dataclass
class Prepared:
    """What ``prepare`` wrote."""

    out: Path
    n_users: int
    n_items: int
    n_interactions: int
    split: str  # where the x_label column came from
    features: bool  # image_feat.npy / text_feat.npy written


def read_table(path: str | Path, what: str) -> pd.DataFrame:
    """A CSV (or, when the header has tabs and no comma, TSV) file with a header, every cell a stripped string.

    Adds a ``__line__`` column (the row's line in the file; rows spanning several lines by quoting shift it) and
    drops blank lines.
    """
    path = require_file(path, what)
    with path.open(encoding="utf-8", errors="replace") as f:
        header = f.readline()
    if not header.strip():
        raise DataFormatError(path, f"empty file: the {what} needs a header line and rows")
    sep = "\t" if "\t" in header and "," not in header else ","
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, skip_blank_lines=False,
                            encoding="utf-8")
    except pd.errors.ParserError as err:
        raise DataFormatError(path, str(err).strip().splitlines()[-1]) from None
    except UnicodeDecodeError as err:
        raise DataFormatError(path, f"not UTF-8 text (byte {err.start})") from None
    table.columns = [str(c).strip() for c in table.columns]
    table = table.apply(lambda column: column.str.strip())
    table["__line__"] = np.arange(len(table)) + 2
    table = table[(table.drop(columns="__line__") != "").any(axis=1)]
    if table.empty:
        raise DataFormatError(path, f"no rows after the header (the {what} is empty)")
    return table


def pick_column(table: pd.DataFrame, path: Path, chosen: str | None, names: tuple[str, ...], role: str,
                flag: str) -> str:
    """The column named ``chosen``, else the first of ``names`` the table has; one-line error otherwise."""
    found = ", ".join(c for c in table.columns if c != "__line__")
    if chosen:
        if chosen not in table.columns:
            raise DataFormatError(path, f"has no column {chosen!r} ({flag}); found: {found}")
        return chosen
    for name in names:
        if name in table.columns:
            return name
    raise DataFormatError(path, f"no {role} column: expected one of {', '.join(names)} (found: {found}); "
                                f"name it with {flag}")


def integer_column(table: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """``table[column]`` as int64, or a one-line error naming the first bad line."""
    values = table[column]
    ok = values.str.fullmatch(INTEGER).to_numpy()
    if not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        value = values.iloc[row]
        problem = "is missing" if value == "" else f"{value!r} is not a non-negative integer"
        raise DataFormatError(path, f"line {table['__line__'].iloc[row]}: {column} {problem}")
    return values.str.replace(r"\.0*$", "", regex=True).astype(np.int64).to_numpy()


@dataclass
class Interactions:
    users: np.ndarray  # int64 original ids
    items: np.ndarray
    labels: np.ndarray | None  # the file's x_label, or None
    ratings: np.ndarray  # str
    stamps: np.ndarray  # str
    item_names: dict[int, str]  # original id -> its spelling in the file (image names may keep leading zeros)
    item_lines: dict[int, int]  # original id -> first line it appears on


def read_interactions(path: str | Path, user_column: str | None = None,
                      item_column: str | None = None) -> Interactions:
    path = Path(path)
    table = read_table(path, "interaction file")
    user = pick_column(table, path, user_column, USER_COLUMNS, "user id", "--user-column")
    item = pick_column(table, path, item_column, ITEM_COLUMNS, "item id", "--item-column")
    users, items = integer_column(table, user, path), integer_column(table, item, path)
    labels = None
    if SPLIT_COLUMN in table.columns:
        labels = integer_column(table, SPLIT_COLUMN, path)
        bad = np.flatnonzero(~np.isin(labels, (0, 1, 2)))
        if bad.size:
            raise DataFormatError(path, f"line {table['__line__'].iloc[bad[0]]}: {SPLIT_COLUMN} {labels[bad[0]]} "
                                        "is not 0, 1 or 2 (train, valid, test)")
        if not (labels == 0).any():
            raise DataFormatError(path, f"no training rows ({SPLIT_COLUMN} 0)")

    def cells(column: str, default: str) -> np.ndarray:
        if column not in table.columns:
            return np.full(len(table), default, dtype=object)
        return table[column].map(lambda s: " ".join(s.split()) or default).to_numpy(dtype=object)

    names = table[item].to_numpy()
    first = pd.Series(np.arange(len(items))).groupby(items).first()
    return Interactions(users, items, labels, cells(RATING_COLUMN, "1"), cells(TIME_COLUMN, "0"),
                        item_names={int(i): names[r] for i, r in first.items()},
                        item_lines={int(i): int(table["__line__"].iloc[r]) for i, r in first.items()})


def read_item_texts(path: str | Path, item_column: str | None = None,
                    text_columns: list[str] | None = None) -> tuple[dict[int, str], dict[int, int]]:
    """(item id -> text, item id -> line) from the item file; several text columns are joined with spaces."""
    path = Path(path)
    table = read_table(path, "item file")
    item = pick_column(table, path, item_column, ITEM_COLUMNS, "item id", "--item-column")
    if text_columns:
        columns = [pick_column(table, path, c, (), "text", "--text-column") for c in text_columns]
    else:
        columns = [pick_column(table, path, None, TEXT_COLUMNS, "text", "--text-column")]
    ids = integer_column(table, item, path)
    lines = table["__line__"].to_numpy()
    repeated = pd.Series(ids).duplicated(keep="first").to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        earlier = int(np.flatnonzero(ids == ids[row])[0])
        raise DataFormatError(path, f"line {lines[row]}: {item} {ids[row]} repeats line {lines[earlier]}")
    texts = table[columns].agg(" ".join, axis=1).map(lambda s: " ".join(s.split()))
    return dict(zip(ids.tolist(), texts.tolist())), dict(zip(ids.tolist(), lines.tolist()))


def index_images(folder: str | Path) -> dict[str, Path]:
    """File stem -> image path for the images in ``folder`` and its direct sub-folders (.jpg preferred)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(folder, "image folder not found")
    found: dict[str, Path] = {}
    rank = {s: r for r, s in enumerate(IMAGE_SUFFIXES)}
    for path in sorted([*folder.glob("*"), *folder.glob("*/*")]):
        suffix = path.suffix.lower()
        if suffix in rank and path.is_file():
            old = found.get(path.stem)
            if old is None or rank[suffix] < rank[old.suffix.lower()]:
                found[path.stem] = path
    return found


def find_images(images: Path, item_ids: np.ndarray, names: dict[int, str], item_file: Path,
                item_lines: dict[int, int]) -> list[Path]:
    """The image of every item (by its spelling in the interaction file, then its plain integer), decodable."""
    index = index_images(images)
    paths = []
    for item in item_ids.tolist():
        path = index.get(names[item]) or index.get(str(item))
        if path is None:
            raise DataFormatError(images, f"no image for itemID {names[item]} ({names[item]}.jpg or "
                                          f"{'/'.join(IMAGE_SUFFIXES[1:])}; line {item_lines[item]} of {item_file})")
        if any(c in str(path) for c in "\t\n\r"):
            raise DataFormatError(path, f"file name holds a tab or line break, which {ITEMS_FILE} cannot store")
        paths.append(path)

    def check(k: int) -> None:
        try:
            open_image(paths[k])
        except DataFormatError as err:
            item = int(item_ids[k])
            raise DataFormatError(paths[k], f"image of itemID {names[item]} (line {item_lines[item]} of "
                                            f"{item_file}) is {err.problem}") from None

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(check, range(len(paths))))
    return paths


def mmrec_split(inter: Interactions, seed: int, k_core: int) -> tuple[np.ndarray, str]:
    """Row mask kept and x_label per kept row: the file's split, or MMRec's random per-user split."""
    if inter.labels is not None:
        return np.ones(inter.users.size, dtype=bool), "the file's x_label (official split)"
    keep = np.zeros(inter.users.size, dtype=bool)
    rows = pd.DataFrame({"u": inter.users, "i": inter.items, "t": inter.stamps})
    keep[np.flatnonzero(~rows.duplicated().to_numpy())] = True
    if k_core > 0:
        kept = np.flatnonzero(keep)
        keep[kept[~k_core_mask(inter.users[kept], inter.items[kept], k_core)]] = False
    note = f"MMRec random per-user split, seed {seed}" + (f", after a {k_core}-core filter" if k_core else "")
    return keep, note


def _write_lines(path: Path, header: str, lines: list[str]) -> None:
    path.write_text(header + "\n" + "".join(line + "\n" for line in lines), encoding="utf-8")


def prepare(inter: str | Path, items: str | Path, images: str | Path, out: str | Path,
            clip_weights: str | Path | None = None, seed: int = 999, k_core: int = 0,
            user_column: str | None = None, item_column: str | None = None, text_columns: list[str] | None = None,
            batch_size: int = 64, device: str = "cpu") -> Prepared:
    """Write the MMRec folder ``out`` (see the module docstring); returns what was written."""
    out, inter, items, images = Path(out), Path(inter), Path(items), Path(images)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataFormatError(out, "already exists and is not an empty folder; remove it or choose another --out")
    if clip_weights is not None and not Path(clip_weights).expanduser().is_file():
        raise WeightsNotFoundError(CLIP_WEIGHTS_KEY, Path(clip_weights).expanduser(), CLIP_SOURCE)
    table = read_interactions(inter, user_column, item_column)
    keep, split = mmrec_split(table, seed, k_core)
    if not keep.any():
        raise DataFormatError(inter, f"no interactions left after the {k_core}-core filter")
    user_ids, uid = np.unique(table.users[keep], return_inverse=True)
    item_ids, iid = np.unique(table.items[keep], return_inverse=True)
    labels = table.labels if table.labels is not None else random_split_labels(uid, np.random.default_rng(seed))
    texts, text_lines = read_item_texts(items, item_column, text_columns)
    absent = [i for i in item_ids.tolist() if i not in texts]
    if absent:
        raise DataFormatError(items, f"no row for itemID {table.item_names[absent[0]]} (used on line "
                                     f"{table.item_lines[absent[0]]} of {inter}); {len(absent)} item(s) lack one")
    image_paths = find_images(images, item_ids, table.item_names, items, text_lines)

    ratings, stamps = table.ratings[keep], table.stamps[keep]
    order = np.lexsort((labels, uid))  # by user, then split; stable within
    scratch = out.with_name(f".{out.name}.partial{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        _write_lines(scratch / f"{out.name}.inter", "userID\titemID\trating\ttimestamp\tx_label",
                     [f"{uid[r]}\t{iid[r]}\t{ratings[r]}\t{stamps[r]}\t{labels[r]}" for r in order])
        base = os.path.abspath(out)
        _write_lines(scratch / ITEMS_FILE, "itemID\timage\ttext",
                     [f"{k}\t{os.path.relpath(os.path.abspath(p), base)}\t{texts[i]}"
                      for k, (i, p) in enumerate(zip(item_ids.tolist(), image_paths))])
        _write_lines(scratch / "u_id_mapping.csv", "user_id\tuserID", [f"{u}\t{k}" for k, u in enumerate(user_ids)])
        _write_lines(scratch / "i_id_mapping.csv", "item_id\titemID",
                     [f"{table.item_names[i]}\t{k}" for k, i in enumerate(item_ids.tolist())])
        if clip_weights is not None:
            # items.tsv's image paths are relative to ``out``; the scratch folder sits next to it, so they hold
            extract_features(scratch, clip_weights, scratch, batch_size=batch_size, device=device)
        if out.is_dir():
            out.rmdir()  # empty, checked above
        os.replace(scratch, out)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return Prepared(out, user_ids.size, item_ids.size, int(keep.sum()), split, clip_weights is not None)
