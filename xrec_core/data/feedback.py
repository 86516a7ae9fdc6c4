"""What the shared baselines fit on: explicit ratings or implicit likes, with optional item side information.

The registry's protocols (:mod:`xrec_core.models.registry`) give every model one
``fit(train, valid)``; the shared baselines (PMF, biased MF, HFT, CTR, ConvMF+, NCF, BPR, MostPop)
take one of these two containers for both arguments, the chapter builds them from its own split::

    train = Ratings(users, items, ratings, n_users, n_items, item_bow=bow)   # HFT, CTR (ratings)
    valid = Ratings(vu, vi, vr, n_users, n_items)                             # early stopping / tuning
    build("HFT", **params).fit(train, valid)

    Interactions(likes_csr, item_bow=bow)                                       # BPR, MostPop, CTR (likes)

``valid`` holds the validation split carved from the training data (never a test fold); its side
information is not read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


def canonical_csr(matrix: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    """``matrix`` as a CSR matrix in canonical form (indices sorted, no duplicates), copied only if needed.

    scipy puts a non-canonical matrix into canonical form *in place* the first time ``sum``,
    ``eliminate_zeros`` or scikit-learn's input checks read it. A Ray worker receives the numpy arrays
    of shared arguments read-only from the object store, and that rewrite then fails ("WRITEBACKIFCOPY
    base is read-only"); data shipped to workers is canonical from the start so that reading it never
    writes to it.
    """
    m = sp.csr_matrix(matrix)
    if not m.has_canonical_format:
        m = m.copy()
        m.sum_duplicates()
    return m


@dataclass(frozen=True)
class Ratings:
    """Explicit feedback: ``(user, item, rating)`` triples with the id ranges.

    Parameters
    ----------
    users, items : array of int, shape (n,)
        Ids in ``[0, n_users)`` and ``[0, n_items)``.
    ratings : array of float, shape (n,)
    n_users, n_items : int
        Sizes of the id ranges (users or items without a rating here still count).
    item_bow : scipy.sparse matrix, optional
        ``(n_items, n_words)`` word counts of each item's training reviews (HFT, CTR).
    item_docs : sequence of sequence of int, optional
        Each item's training reviews as vocabulary ids, concatenated (ConvMF+).
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    n_users: int
    n_items: int
    item_bow: sp.spmatrix | None = None
    item_docs: Sequence[Sequence[int]] | None = None

    def __post_init__(self) -> None:
        users, items = np.asarray(self.users, dtype=np.int64), np.asarray(self.items, dtype=np.int64)
        ratings = np.asarray(self.ratings, dtype=np.float64)
        if not users.shape == items.shape == ratings.shape or users.ndim != 1:
            raise ValueError(f"users, items and ratings must be 1-D of one length, got {users.shape}, {items.shape}, "
                             f"{ratings.shape}")
        if len(users) and (users.min() < 0 or items.min() < 0 or users.max() >= self.n_users
                           or items.max() >= self.n_items):
            raise ValueError(f"user/item ids out of range for n_users={self.n_users}, n_items={self.n_items}")
        if self.item_bow is not None and self.item_bow.shape[0] != self.n_items:
            raise ValueError(f"item_bow has {self.item_bow.shape[0]} rows, expected n_items={self.n_items}")
        if self.item_docs is not None and len(self.item_docs) != self.n_items:
            raise ValueError(f"item_docs must hold one document per item ({self.n_items}), got {len(self.item_docs)}")
        object.__setattr__(self, "users", users)
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "ratings", ratings)

    def __len__(self) -> int:
        return len(self.ratings)

    def mse(self, predicted: np.ndarray) -> float:
        """Mean squared error of ``predicted`` (one value per triple) against these ratings."""
        return float(np.mean((np.asarray(predicted, dtype=np.float64) - self.ratings) ** 2))


@dataclass(frozen=True)
class Interactions:
    """Implicit feedback: a ``(n_users, n_items)`` like matrix (any nonzero counts as a like).

    Parameters
    ----------
    likes : scipy.sparse matrix
        Converted to CSR.
    item_bow : scipy.sparse matrix, optional
        ``(n_items, n_words)`` word counts of each item's text (CTR's topics).
    """

    likes: sp.csr_matrix
    item_bow: sp.spmatrix | None = None

    def __post_init__(self) -> None:
        if not sp.issparse(self.likes):
            raise ValueError(f"likes must be a scipy.sparse matrix, got {type(self.likes).__name__}")
        object.__setattr__(self, "likes", canonical_csr(self.likes))  # read-only safe under Ray
        if self.item_bow is not None and self.item_bow.shape[0] != self.n_items:
            raise ValueError(f"item_bow has {self.item_bow.shape[0]} rows, expected n_items={self.n_items}")

    @classmethod
    def from_lists(cls, users: np.ndarray, items: Sequence[np.ndarray], n_users: int, n_items: int) -> "Interactions":
        """Likes ``items[k]`` of user ``users[k]`` (e.g. held-out validation likes) as a ``(n_users, n_items)`` matrix."""
        if len(users) != len(items):
            raise ValueError(f"users and items differ in length: {len(users)} vs {len(items)}")
        rows = np.repeat(np.asarray(users, dtype=np.int64), [len(i) for i in items])
        cols = np.concatenate([np.asarray(i, dtype=np.int64) for i in items]) if len(items) else np.zeros(0, np.int64)
        likes = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, n_items))
        likes.sum_duplicates()
        likes.data[:] = 1.0
        return cls(likes)

    @property
    def n_users(self) -> int:
        return self.likes.shape[0]

    @property
    def n_items(self) -> int:
        return self.likes.shape[1]

    def relevant(self) -> list[np.ndarray]:
        """Each user's liked items (empty for users without a like)."""
        X = self.likes
        return [X.indices[X.indptr[u]:X.indptr[u + 1]] for u in range(X.shape[0])]
