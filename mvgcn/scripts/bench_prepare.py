"""Time the tabular part of ``mvgcn prepare`` on a SYNTHETIC ratings file of Amazon Clothing's size.

The file imitates the Amazon 2014 "ratings only" CSV of Clothing, Shoes and Jewelry (5.7 M rows,
3.1 M users, 1.1 M items; no header): user activity follows a power law (most users rate once),
item popularity a Zipf law, and 0.1 % of the rows are repeated verbatim, so the 5-core keeps a
Clothing-like remainder (~30 k users, ~25 k items, ~0.3 M rows; the real one: 39,387 / 23,033 / 278,677).

    python mvgcn/scripts/bench_prepare.py [--ratings /tmp/ratings_clothing_like.csv] [--repeat 2]

writes the file once (seeded), then times ``mvgcn.prepare.write_interactions`` (read, clean, dedup,
5-core, re-index, split, write ``.inter`` and the id mappings) and prints what it measured.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mvgcn.prepare import write_interactions

ALPHABET = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", dtype=np.uint8)


def id_strings(n: int, prefix: str, width: int, seed: int) -> np.ndarray:
    """n distinct ids: prefix + ``width`` base-36 characters; the first seven scramble 0..n-1 bijectively."""
    index = np.arange(n, dtype=np.int64)
    digits = []
    for chunk, factor in enumerate((1_000_003, 48_271)):  # both prime to 36: each chunk is a bijection mod 36**7
        x = (index * factor + seed + chunk) % 36**7
        digits += [(x // 36**p) % 36 for p in range(7)]
    raw = np.empty((n, len(prefix) + width), dtype=np.uint8)
    raw[:, : len(prefix)] = np.frombuffer(prefix.encode(), dtype=np.uint8)
    raw[:, len(prefix) :] = ALPHABET[np.stack(digits[:width], axis=1)]
    return raw.view(f"S{raw.shape[1]}").ravel().astype(str)


def draw(rng: np.random.Generator, n: int, weights: np.ndarray) -> np.ndarray:
    """n indices drawn with probability proportional to ``weights``."""
    cdf = np.cumsum(weights)
    return np.searchsorted(cdf, rng.random(n) * cdf[-1])


def write_clothing_like(path: Path, seed: int = 0, n_users: int = 3_117_268, n_items: int = 1_136_004) -> int:
    """Write the synthetic ratings CSV; return its number of rows."""
    rng = np.random.default_rng(seed)
    d = np.arange(1, 1001)
    per_user = 1 + draw(rng, n_users, d**-2.45 * np.exp(-d / 200))  # mean ~1.86 ratings per user
    users = rng.permutation(np.repeat(np.arange(n_users), per_user))
    items = draw(rng, users.size, (np.arange(n_items) + 100.0) ** -0.69)
    table = pd.DataFrame({
        "user": pd.Categorical.from_codes(users, id_strings(n_users, "A", 13, seed)),
        "item": pd.Categorical.from_codes(items, id_strings(n_items, "B00", 7, seed + 1)),
        "rating": rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], users.size, p=[0.06, 0.06, 0.11, 0.2, 0.57]),
        "timestamp": rng.integers(900_000_000, 1_406_000_000, users.size),
    })
    repeated = rng.choice(len(table), len(table) // 1000, replace=False)
    table = pd.concat([table, table.iloc[repeated]]).sort_index(kind="stable")  # each copy next to its original
    table.to_csv(path, header=False, index=False, float_format="%.1f", lineterminator="\n")
    return len(table)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ratings", type=Path, default=Path(tempfile.gettempdir()) / "ratings_clothing_like.csv")
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args(argv)
    if not args.ratings.is_file():
        start = time.perf_counter()
        rows = write_clothing_like(args.ratings)
        print(f"wrote {args.ratings} ({rows:,} rows, SYNTHETIC) in {time.perf_counter() - start:.0f} s")
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            asins = write_interactions(args.ratings, Path(tmp) / "clothing_like")
            seconds = time.perf_counter() - start
            kept = sum(1 for _ in (Path(tmp) / "clothing_like" / "clothing_like.inter").open()) - 1
        print(f"write_interactions: {seconds:.1f} s ({kept:,} interactions, {asins.size:,} items after the 5-core; "
              f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GiB)")


if __name__ == "__main__":
    main()
