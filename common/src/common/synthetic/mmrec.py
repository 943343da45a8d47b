"""SYNTHETIC recommendation data in the MMRec format (``<name>.inter``, ``image_feat.npy``, ``text_feat.npy``).

Planted structure: users and items have latent factors; each user's items are drawn without
replacement (Gumbel top-k) from softmax(u.v * sharpness + popularity), so preferences follow the
factors with a popularity skew. Image and text features are noisy random projections of the item
factors, so content predicts preference. An item that no user drew goes to the user who likes it
most, so ids are contiguous (every item occurs, as after MMRec's 5-core re-indexing). Each user is split
at random by MMRec's rule (``common.data.mmrec.random_split_labels``).

Optional, off by default (the default output is unchanged, byte for byte), the two defects of
pre-trained content features that BeFA (AAAI'25) names:

- **information drift** (``drift_dims`` k > 0): every modality gets its own k nuisance factors per item,
  standard normal, drawn from a generator of their own (``default_rng([seed, 1])``), so they are
  independent of the user and item factors and of the interactions, which never use them. They enter
  the features through a random Gaussian projection scaled to ``drift_scale``: each feature coordinate
  gets drift variance ``drift_scale**2`` against about 1 from the item factors and ``feature_noise**2``
  from the noise, so k large-variance directions with no preference signal dominate the vector.
- **information omission** (``omit_fraction`` f > 0): the last round(f * factor_dim) item factors get a
  zero row in every modality's projection, so no feature carries them, while the interactions still
  follow them; only behaviour can tell the items apart along those factors.

The interactions and the split do not depend on either option: with the same seed and sizes the
``.inter`` file is the default one, and only the features differ. ``generate`` returns the data with
the planted factors (for tests); ``write`` saves the files.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.data.mmrec import random_split_labels

FEATURE_FILES = ("image_feat.npy", "text_feat.npy")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n-users", type=int, default=600)
    parser.add_argument("--n-items", type=int, default=400)
    parser.add_argument("--mean-interactions", type=float, default=12.0, help="mean interactions per user (>= 5)")
    parser.add_argument("--image-dim", type=int, default=4096)
    parser.add_argument("--text-dim", type=int, default=384)
    parser.add_argument("--name", default=None, help="dataset name (file <name>.inter); default: the folder name")
    parser.add_argument("--drift-dims", type=int, default=0,
                        help="information drift: preference-irrelevant nuisance factors per modality (0: none)")
    parser.add_argument("--drift-scale", type=float, default=3.0, help="standard deviation of the drift per coordinate")
    parser.add_argument("--omit-fraction", type=float, default=0.0,
                        help="information omission: fraction of the item factors left out of every feature")


@dataclass
class SyntheticMMRec:
    """The rows of ``<name>.inter`` (user, item, rating, timestamp, x_label), the features by file name, and
    what was planted: the user and item factors, each modality's drift component and drift factors, and
    the indices of the omitted item factors."""

    table: np.ndarray
    features: dict[str, np.ndarray]
    user_factors: np.ndarray
    item_factors: np.ndarray
    omitted: np.ndarray
    drift: dict[str, np.ndarray] = field(default_factory=dict)
    drift_factors: dict[str, np.ndarray] = field(default_factory=dict)


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


def generate(
    seed: int = 0,
    n_users: int = 600,
    n_items: int = 400,
    mean_interactions: float = 12.0,
    image_dim: int = 4096,
    text_dim: int = 384,
    factor_dim: int = 8,
    feature_noise: float = 0.5,
    drift_dims: int = 0,
    drift_scale: float = 3.0,
    omit_fraction: float = 0.0,
) -> SyntheticMMRec:
    """The dataset in memory (deterministic in its arguments); see the module docstring for what is planted."""
    if drift_dims < 0 or drift_scale < 0 or not 0 <= omit_fraction <= 1:
        raise ValueError("drift_dims and drift_scale must be >= 0 and omit_fraction in [0, 1]")
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

    omitted = np.arange(factor_dim - round(omit_fraction * factor_dim), factor_dim)
    drift_rng = np.random.default_rng([seed, 1]) if drift_dims else None
    sample = SyntheticMMRec(table, {}, user_f, item_f, omitted)
    for fname, dim in zip(FEATURE_FILES, (image_dim, text_dim)):
        projection = rng.standard_normal((factor_dim, dim)) / np.sqrt(factor_dim)
        projection[omitted] = 0.0  # information omission: these factors reach no feature
        feats = item_f @ projection + feature_noise * rng.standard_normal((n_items, dim))
        if drift_rng is not None:  # information drift: independent nuisance directions of large variance
            nuisance = drift_rng.standard_normal((n_items, drift_dims))
            drift = nuisance @ drift_rng.standard_normal((drift_dims, dim)) * (drift_scale / np.sqrt(drift_dims))
            sample.drift_factors[fname], sample.drift[fname] = nuisance, drift
            feats = feats + drift
        sample.features[fname] = feats.astype(np.float32)
    return sample


def write(out: Path, seed: int = 0, name: str | None = None, **options) -> Path:
    """Write the dataset into ``out`` (created) and return ``out``; ``options`` are ``generate``'s."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sample = generate(seed, **options)
    name = name or out.name
    np.savetxt(
        out / f"{name}.inter", sample.table, fmt="%d", delimiter="\t",
        header="userID\titemID\trating\ttimestamp\tx_label", comments="",
    )
    for fname, feats in sample.features.items():
        np.save(out / fname, feats)
    return out
