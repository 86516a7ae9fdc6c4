"""Inputs of the review-based rating models of the SEMAX chapter: a time-ordered review corpus.

Every model of the chapter (SEMA, SEMAX, DeepCoNN, TransNets, TransNets-Ext) predicts the rating of
review ``i`` from the *earlier* reviews of its user and of its item only. :func:`build_histories`
computes, for every review, the indices of the reviews of the same user (item) written strictly
before it (SEMAX, Sec. IV-A1: "the review sequences ... have the review time earlier than the
current time of the rating. Note that the review sequence does not include the review attached
with the rating"). The target review's own text is used only by the *related* task of SEMAX and
by the target network of TransNets, and only for training examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def build_histories(entity: np.ndarray, times: np.ndarray, max_len: int) -> np.ndarray:
    """Indices of each review's earlier reviews by the same entity (user or item), oldest first.

    Parameters
    ----------
    entity : (N,) int array
        User (or item) index of every review.
    times : (N,) int array
        Review time of every review.
    max_len : int
        Keep the ``max_len`` most recent earlier reviews (``0`` keeps all).

    Returns
    -------
    (N, M) int64 array
        Row ``i`` lists the reviews ``j`` with ``entity[j] == entity[i]`` and ``times[j] < times[i]``
        in chronological order (ties by index), left-aligned and padded with ``-1``. Reviews with the
        same time as review ``i`` are *not* included: at that time they are not yet known.
    """
    entity = np.asarray(entity)
    times = np.asarray(times)
    if entity.shape != times.shape or entity.ndim != 1:
        raise ValueError(f"entity and times must be 1-d arrays of one length, got {entity.shape} and {times.shape}")
    n = len(entity)
    order = np.lexsort((np.arange(n), times, entity))  # by entity, then time, then index
    ent_sorted = entity[order]
    starts = np.flatnonzero(np.r_[True, ent_sorted[1:] != ent_sorted[:-1]])
    ends = np.r_[starts[1:], n]
    lists: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * n
    width = 0
    for s, e in zip(starts, ends):
        group = order[s:e]  # chronological reviews of one entity
        group_times = times[group]
        n_before = np.searchsorted(group_times, group_times, side="left")  # strictly earlier
        for pos, idx in enumerate(group):
            k = n_before[pos]
            lo = max(0, k - max_len) if max_len > 0 else 0
            lists[idx] = group[lo:k]
            width = max(width, k - lo)
    out = np.full((n, max(width, 1)), -1, dtype=np.int64)
    for i, hist in enumerate(lists):
        out[i, : len(hist)] = hist
    return out


@dataclass
class ReviewCorpus:
    """All reviews of a dataset, encoded, with every review's user and item histories.

    Attributes
    ----------
    users, items : (N,) int64
        Dense user and item indices.
    ratings : (N,) float32
    times : (N,) int64
    tokens : (N, L) int64
        Word ids of every review, right-padded with ``pad_id``; at least one token per review.
    lengths : (N,) int64
        Number of real tokens, ``1 <= lengths <= L``.
    user_hist, item_hist : (N, M) int64
        From :func:`build_histories` (``-1`` padded).
    n_users, n_items, vocab_size, pad_id : int
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    times: np.ndarray
    tokens: np.ndarray
    lengths: np.ndarray
    user_hist: np.ndarray
    item_hist: np.ndarray
    n_users: int
    n_items: int
    vocab_size: int
    pad_id: int = 0

    def __len__(self) -> int:
        return len(self.users)

    @classmethod
    def build(cls, users: Sequence[int], items: Sequence[int], ratings: Sequence[float], times: Sequence[int],
              token_ids: Sequence[Sequence[int]], *, vocab_size: int, pad_id: int, unk_id: int,
              max_review_len: int, max_history: int, n_users: int | None = None,
              n_items: int | None = None) -> "ReviewCorpus":
        """Pad/truncate the encoded reviews and build both histories.

        An empty review becomes the single token ``unk_id`` so that every review has an embedding.
        """
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        times = np.asarray(times, dtype=np.int64)
        n = len(users)
        if not (len(items) == len(times) == len(ratings) == len(token_ids) == n):
            raise ValueError("users, items, ratings, times and token_ids must have the same length")
        if max_review_len < 1:
            raise ValueError(f"max_review_len must be >= 1, got {max_review_len}")
        tokens = np.full((n, max_review_len), pad_id, dtype=np.int64)
        lengths = np.empty(n, dtype=np.int64)
        for i, ids in enumerate(token_ids):
            ids = list(ids)[:max_review_len] or [unk_id]
            tokens[i, : len(ids)] = ids
            lengths[i] = len(ids)
        return cls(users=users, items=items, ratings=np.asarray(ratings, dtype=np.float32), times=times,
                   tokens=tokens, lengths=lengths,
                   user_hist=build_histories(users, times, max_history),
                   item_hist=build_histories(items, times, max_history),
                   n_users=int(n_users if n_users is not None else users.max() + 1),
                   n_items=int(n_items if n_items is not None else items.max() + 1),
                   vocab_size=int(vocab_size), pad_id=int(pad_id))

    def history_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Number of (kept) earlier reviews of every review's user and item."""
        return (self.user_hist >= 0).sum(1), (self.item_hist >= 0).sum(1)


@dataclass(frozen=True)
class ReviewSet:
    """The reviews ``idx`` of a :class:`ReviewCorpus`: what the chapter's models fit on and predict.

    A model reads, for every review of ``idx``, its user, item, rating, the user's and the item's
    earlier reviews (histories) and, for training only, the review's own text.
    """

    corpus: ReviewCorpus
    idx: np.ndarray

    def __len__(self) -> int:
        return len(self.idx)

    @property
    def ratings(self) -> np.ndarray:
        return self.corpus.ratings[self.idx].astype(np.float64)
