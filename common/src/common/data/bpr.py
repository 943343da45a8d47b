"""MMRec's BPR training loader (``enoche/MMRec:src/utils/dataloader.py:TrainDataLoader``), vectorised.

Each epoch shuffles the training rows (u, i+) and pairs each with one negative item j drawn uniformly
from the items that occur in the training split, redrawn while j is in u's training items. The
rejection loop runs over the shrinking array of rejected rows, never over single interactions.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


class BPRSampler:
    """Yields ``(users, positives, negatives)`` int64 tensors of ``batch_size`` rows per epoch."""

    def __init__(self, users: np.ndarray, items: np.ndarray, n_items: int, batch_size: int = 2048, seed: int = 0):
        self.users = np.asarray(users, dtype=np.int64)
        self.items = np.asarray(items, dtype=np.int64)
        self.n_items = int(n_items)
        self.batch_size = int(batch_size)
        self.pool = np.unique(self.items)
        self.train_keys = np.unique(self.users * self.n_items + self.items)
        if np.bincount(self.train_keys // self.n_items).max() >= self.pool.size:
            raise ValueError("a user has interacted with every item; no negative can be drawn")
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return -(-self.users.size // self.batch_size)

    def _is_train(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self.n_items + items
        pos = np.searchsorted(self.train_keys, keys)
        pos[pos == self.train_keys.size] = 0
        return self.train_keys[pos] == keys

    def sample_negatives(self, users: np.ndarray) -> np.ndarray:
        """One uniform negative per user from the training item pool, not in that user's training items."""
        negatives = self.pool[self.rng.integers(0, self.pool.size, size=users.size)]
        todo = np.flatnonzero(self._is_train(users, negatives))
        while todo.size:
            negatives[todo] = self.pool[self.rng.integers(0, self.pool.size, size=todo.size)]
            todo = todo[self._is_train(users[todo], negatives[todo])]
        return negatives

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """One pass over the shuffled training rows; negatives are drawn for the whole epoch at once."""
        order = self.rng.permutation(self.users.size)
        users, items = self.users[order], self.items[order]
        negatives = self.sample_negatives(users)
        for start in range(0, users.size, self.batch_size):
            sl = slice(start, start + self.batch_size)
            yield torch.from_numpy(users[sl]), torch.from_numpy(items[sl]), torch.from_numpy(negatives[sl])

    def state_dict(self) -> dict:
        """RNG state, so a resumed run draws the same epochs as an uninterrupted one."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
