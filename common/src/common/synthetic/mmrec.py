"""SYNTHETIC recommendation data in the MMRec format (``<name>.inter``, ``image_feat.npy``, ``text_feat.npy``).

Planted structure: users and items have latent factors; each user's items are drawn without
replacement (Gumbel top-k) from softmax(u.v * sharpness + popularity), so preferences follow the
factors with a popularity skew. Image and text features are noisy random projections of the item
factors, so content predicts preference. An item that no user drew goes to the user who likes it
most, so ids are contiguous (every item occurs, as after MMRec's 5-core re-indexing). Each user is split
at random by MMRec's rule (``common.data.mmrec.random_split_labels``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from common.data.mmrec import random_split_labels


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n-users", type=int, default=600)
    parser.add_argument("--n-items", type=int, default=400)
    parser.add_argument("--mean-interactions", type=float, default=12.0, help="mean interactions per user (>= 5)")
    parser.add_argument("--image-dim", type=int, default=4096)
    parser.add_argument("--text-dim", type=int, default=384)
    parser.add_argument("--name", default=None, help="dataset name (file <name>.inter); default: the folder name")


def _draw_interactions(rng: np.random.Generator, user_f, item_f, popularity, counts, chunk=2048):
    """Per user, ``counts[u]`` distinct items by Gumbel top-k of (u.v * sharpness + popularity)."""
    sharpness = 3.0 / np.sqrt(user_f.shape[1])
    users, items = [], []
    for start in range(0, user_f.shape[0], chunk):
        logits = user_f[start : start + chunk] @ item_f.T * sharpness + popularity
        logits += rng.gumbel(size=logits.shape)
        order = np.argsort(-logits, axis=1)
        n = counts[start : start + chunk]
        take = np.arange(order.shape[1]) < n[:, None]
        users.append(np.repeat(np.arange(start, start + order.shape[0]), n))
        items.append(order[take])
    return np.concatenate(users), np.concatenate(items)


def write(
    out: Path,
    seed: int = 0,
    n_users: int = 600,
    n_items: int = 400,
    mean_interactions: float = 12.0,
    image_dim: int = 4096,
    text_dim: int = 384,
    name: str | None = None,
    factor_dim: int = 8,
    feature_noise: float = 0.5,
) -> Path:
    """Write the dataset into ``out`` (created) and return ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    user_f = rng.standard_normal((n_users, factor_dim))
    item_f = rng.standard_normal((n_items, factor_dim))
    popularity = 1.2 * rng.standard_normal(n_items)
    counts = np.clip(5 + rng.poisson(max(mean_interactions - 5, 0), n_users), 5, n_items // 2)
    users, items = _draw_interactions(rng, user_f, item_f, popularity, counts)

    unused = np.setdiff1d(np.arange(n_items), items)
    if unused.size:  # contiguous ids: each undrawn item joins the user with the highest affinity for it
        users = np.concatenate([users, np.argmax(user_f @ item_f[unused].T, axis=0)])
        items = np.concatenate([items, unused])
        order = np.argsort(users, kind="stable")
        users, items = users[order], items[order]
    labels = random_split_labels(users, rng)

    n = users.size
    ratings = rng.integers(1, 6, n)
    timestamps = 1_300_000_000 + np.sort(rng.integers(0, 10**8, n))
    table = np.stack([users, items, ratings, timestamps, labels], axis=1)
    name = name or out.name
    np.savetxt(
        out / f"{name}.inter", table, fmt="%d", delimiter="\t",
        header="userID\titemID\trating\ttimestamp\tx_label", comments="",
    )
    for fname, dim in (("image_feat.npy", image_dim), ("text_feat.npy", text_dim)):
        projection = rng.standard_normal((factor_dim, dim)) / np.sqrt(factor_dim)
        feats = item_f @ projection + feature_noise * rng.standard_normal((n_items, dim))
        np.save(out / fname, feats.astype(np.float32))
    return out
