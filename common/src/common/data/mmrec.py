"""The MMRec dataset format (``enoche/MMRec:src/utils/dataset.py``, ``dataloader.py``).

A dataset folder holds ``<name>.inter`` (tab-separated with a header that contains ``userID``,
``itemID`` and ``x_label``; x_label 0/1/2 = train/valid/test), ``image_feat.npy`` and
``text_feat.npy`` (row i = item i). Ids are 0-based; as in MMRec, ``n_users``/``n_items`` are the largest id + 1, so
ids may have gaps (an item with features but no interaction is ranked like any other).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from common.errors import DataFormatError, require_file
from common.metrics.ranking import RankingBatch

SPLITS = {"train": 0, "valid": 1, "test": 2}
REQUIRED_COLUMNS = ("userID", "itemID", "x_label")
FEATURE_FILES = ("image_feat.npy", "text_feat.npy")


def k_core_mask(users: np.ndarray, items: np.ndarray, k: int = 5) -> np.ndarray:
    """Rows kept by MMRec's iterative k-core filter (``preprocessing/0rating2inter.ipynb``).

    Repeatedly drops every row whose user or item has fewer than ``k`` rows left, until none has.
    """
    rows = np.arange(users.size)
    u, i = pd.factorize(users)[0], pd.factorize(items)[0]
    while True:
        bad = (np.bincount(u)[u] < k) | (np.bincount(i)[i] < k)
        if not bad.any():
            break
        rows, u, i = rows[~bad], u[~bad], i[~bad]
    keep = np.zeros(users.size, dtype=bool)
    keep[rows] = True
    return keep


def random_split_labels(users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """x_label per row by MMRec's random per-user split (``preprocessing/1splitting.ipynb``).

    Rows are shuffled and grouped by user; a user with n < 10 rows gets n-2 train, 1 valid, 1 test;
    otherwise floor(0.2 n) rows are held out, floor(0.2 n) // 2 of them valid and the rest test.
    """
    _, u = np.unique(users, return_inverse=True)
    n_per_user = np.bincount(u)
    order = np.lexsort((rng.random(users.size), u))  # random order within each user
    start = np.concatenate([[0], np.cumsum(n_per_user)[:-1]])
    pos = np.empty(users.size, dtype=np.int64)
    pos[order] = np.arange(users.size) - start[u[order]]
    n = n_per_user[u]
    held_out = np.where(n < 10, 2, np.floor(0.2 * n).astype(np.int64))
    n_valid = np.where(n < 10, 1, held_out // 2)
    n_train = n - held_out
    return np.where(pos < n_train, 0, np.where(pos < n_train + n_valid, 1, 2))


def read_inter(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(users, items, labels) int64 arrays from a ``.inter`` file, validated."""
    path = require_file(path, "interaction file (.inter)")
    with path.open() as f:
        header = f.readline().rstrip("\n").split("\t")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise DataFormatError(path, f"header lacks column(s) {', '.join(missing)} (found: {', '.join(header)})")
    table = _read_columns(path, [header.index(c) for c in REQUIRED_COLUMNS])
    if table.shape[0] == 0:
        raise DataFormatError(path, "no interactions")
    if not (np.isfinite(table).all() and np.all(table == np.round(table))):
        raise DataFormatError(path, "userID, itemID and x_label must be integers")
    users, items, labels = (table[:, i].astype(np.int64) for i in range(3))
    if users.min() < 0 or items.min() < 0:
        raise DataFormatError(path, "negative userID or itemID")
    bad = np.setdiff1d(np.unique(labels), list(SPLITS.values()))
    if bad.size:
        row = int(np.flatnonzero(np.isin(labels, bad))[0]) + 2
        raise DataFormatError(path, f"unknown split label x_label={bad[0]} on line {row} (expected 0, 1 or 2)")
    return users, items, labels


def _read_columns(path: Path, cols: list[int]) -> np.ndarray:
    """The float64 [rows, len(cols)] values of the given columns below the header (pandas, blank lines skipped)."""
    try:
        frame = pd.read_csv(path, sep="\t", header=None, skiprows=1, usecols=cols, na_filter=False,
                            dtype=dict.fromkeys(cols, np.float64))
    except pd.errors.EmptyDataError:  # nothing below the header
        return np.empty((0, len(cols)))
    except ValueError as err:
        raise DataFormatError(path, f"unreadable row: {_first_unreadable(path, cols) or _first_line(err)}") from None
    return frame[cols].to_numpy()


def _first_unreadable(path: Path, cols: list[int]) -> str | None:
    """Where and why the first data line fails: a missing column or a value that is not a finite number."""
    with path.open(errors="replace") as f:
        for n, line in enumerate(f, 1):
            fields = line.rstrip("\r\n").split("\t")
            if n == 1 or fields == [""]:
                continue
            for name, c in zip(REQUIRED_COLUMNS, cols):
                if c >= len(fields):
                    return f"line {n} has {len(fields)} columns, {name} is column {c + 1}"
                if not _is_finite_number(fields[c]):
                    return f"line {n} has {name} {fields[c]!r}, not a number"
    return None


def _is_finite_number(text: str) -> bool:
    try:
        return np.isfinite(float(text))
    except ValueError:
        return False


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def read_features(path: str | Path, n_items: int) -> np.ndarray:
    """A float32 [n_items, dim] feature matrix from ``.npy``, validated (shape, finiteness)."""
    path = require_file(path, "feature file")
    try:
        feats = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataFormatError(path, f"not a readable .npy array ({str(err).splitlines()[0]})") from None
    if feats.ndim != 2:
        raise DataFormatError(path, f"expected a 2-d [items, dim] array, got shape {feats.shape}")
    if feats.shape[0] != n_items:
        raise DataFormatError(path, f"has {feats.shape[0]} rows but the .inter file has {n_items} items")
    if not np.issubdtype(feats.dtype, np.number):
        raise DataFormatError(path, f"non-numeric dtype {feats.dtype}")
    feats = feats.astype(np.float32, copy=False)
    if not np.isfinite(feats).all():
        rows = np.flatnonzero(~np.isfinite(feats).all(axis=1))
        raise DataFormatError(path, f"{rows.size} row(s) hold NaN/inf, first is item {rows[0]}")
    return feats


def _csr(users: np.ndarray, items: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(users.size, dtype=np.float32), (users, items)), shape=shape)
    m.sum_duplicates()
    m.data[:] = 1.0
    m.sort_indices()
    return m


@dataclass
class MMRecData:
    """An MMRec dataset: interaction pairs and user x item CSR matrices per split, plus item features.

    ``train_users``/``train_items`` keep the train rows as in the file (duplicates included), which is
    what MMRec's BPR loader iterates over; the CSR matrices are binary.
    """

    path: Path
    n_users: int
    n_items: int
    train_users: np.ndarray
    train_items: np.ndarray
    splits: dict[str, sp.csr_matrix]
    features: dict[str, np.ndarray] = field(default_factory=dict)

    def eval_users(self, split: str) -> np.ndarray:
        """Users with at least one interaction in ``split`` (the users MMRec evaluates)."""
        return np.flatnonzero(np.diff(self._split(split).indptr) > 0)

    def item_popularity(self) -> np.ndarray:
        """Training interactions per item (float32 [n_items]): the scores of the popularity baseline."""
        return np.asarray(self.splits["train"].sum(0), dtype=np.float32).ravel()

    def _split(self, split: str) -> sp.csr_matrix:
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(self.splits)}")
        return self.splits[split]

    def eval_batches(self, split: str, batch_size: int = 4096) -> Iterator[RankingBatch]:
        """Full-ranking batches for ``split`` ('valid' or 'test'): users, train mask and truth, as tensors.

        As in MMRec, only training items are masked (validation items stay rankable at test time).
        """
        truth = self._split(split)
        users = self.eval_users(split)
        train = self.splits["train"]
        for start in range(0, users.size, batch_size):
            batch = users[start : start + batch_size]
            tr = train[batch].tocoo()
            te = truth[batch].tocoo()
            yield RankingBatch(
                users=torch.from_numpy(batch),
                train_rows=torch.from_numpy(tr.row.astype(np.int64)),
                train_cols=torch.from_numpy(tr.col.astype(np.int64)),
                truth_rows=torch.from_numpy(te.row.astype(np.int64)),
                truth_cols=torch.from_numpy(te.col.astype(np.int64)),
            )


def load_mmrec(
    root: str | Path,
    name: str | None = None,
    feature_files: tuple[str, ...] = FEATURE_FILES,
    filter_cold_start_users: bool = True,
) -> MMRecData:
    """Load ``root/<name>.inter`` and the feature files.

    ``name`` defaults to the folder name. With ``filter_cold_start_users`` (MMRec's
    ``filter_out_cod_start_users``, on by default), valid/test rows of users absent from train are
    dropped. ``n_users``/``n_items`` are max id + 1 over all splits, as in MMRec.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(root, "dataset folder not found")
    inter = root / f"{name or root.name}.inter"
    users, items, labels = read_inter(inter)
    n_users, n_items = int(users.max()) + 1, int(items.max()) + 1
    train = labels == SPLITS["train"]
    if not train.any():
        raise DataFormatError(inter, "no training interactions (x_label 0)")
    keep = train.copy()
    known = np.zeros(n_users, dtype=bool)
    known[users[train]] = True
    for label in (SPLITS["valid"], SPLITS["test"]):
        rows = labels == label
        keep |= rows & (known[users] if filter_cold_start_users else True)
    users, items, labels = users[keep], items[keep], labels[keep]
    splits = {s: _csr(users[labels == v], items[labels == v], (n_users, n_items)) for s, v in SPLITS.items()}
    features = {f.removesuffix(".npy"): read_features(root / f, n_items) for f in feature_files}
    return MMRecData(
        path=root,
        n_users=n_users,
        n_items=n_items,
        train_users=users[labels == 0],
        train_items=items[labels == 0],
        splits=splits,
        features=features,
    )
