"""Top-k ranking metrics, per user.

Conventions: ``topk`` is an ``(n_users, K)`` integer array of item ids, best first (from
:func:`topk_items`); ``relevant`` is a sequence with, per user, the collection of held-out
relevant item ids. Every ``*_at_k`` function returns a per-user ``np.ndarray`` so callers can
average, bootstrap or t-test it; users with no relevant item get ``nan`` where the metric is
undefined (recall, ndcg) and are skipped by :func:`mean_over_users`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp


def topk_items(scores: np.ndarray, k: int, exclude: sp.spmatrix | None = None) -> np.ndarray:
    """Indices of the ``k`` highest scores per row, best first; ``exclude`` entries (training likes) never appear.

    Ties are broken by the lower item id, so the result is deterministic.
    """
    scores = np.array(scores, dtype=np.float64, copy=True)  # (n_users, n_items)
    if exclude is not None:
        ex = sp.csr_matrix(exclude)
        rows, cols = ex.nonzero()
        scores[rows, cols] = -np.inf
    k = min(k, scores.shape[1])
    # argsort on (-score, item) via a stable sort of -scores
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order


def _as_sets(relevant: Sequence) -> list[set[int]]:
    return [set(int(i) for i in r) for r in relevant]


def hits_matrix(topk: np.ndarray, relevant: Sequence) -> np.ndarray:
    """``(n_users, K)`` 0/1 array: is the item at each rank relevant."""
    rel = _as_sets(relevant)
    return np.array([[1.0 if int(i) in r else 0.0 for i in row] for row, r in zip(topk, rel)]).reshape(topk.shape)


def recall_at_k(topk: np.ndarray, relevant: Sequence, k: int) -> np.ndarray:
    hits = hits_matrix(topk[:, :k], relevant).sum(axis=1)
    n_rel = np.array([len(set(r)) for r in relevant], dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_rel > 0, hits / n_rel, np.nan)


def precision_at_k(topk: np.ndarray, relevant: Sequence, k: int) -> np.ndarray:
    return hits_matrix(topk[:, :k], relevant).sum(axis=1) / float(k)


def f1_at_k(topk: np.ndarray, relevant: Sequence, k: int) -> np.ndarray:
    p = precision_at_k(topk, relevant, k)
    r = recall_at_k(topk, relevant, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(p + r > 0, 2 * p * r / (p + r), 0.0)


def hit_at_k(topk: np.ndarray, relevant: Sequence, k: int) -> np.ndarray:
    return (hits_matrix(topk[:, :k], relevant).sum(axis=1) > 0).astype(float)


def ndcg_at_k(topk: np.ndarray, relevant: Sequence, k: int) -> np.ndarray:
    """Binary-relevance NDCG@k with log2 discounts; ideal DCG uses min(|relevant|, k) hits."""
    hits = hits_matrix(topk[:, :k], relevant)
    discounts = 1.0 / np.log2(np.arange(2, hits.shape[1] + 2))
    dcg = hits @ discounts
    n_rel = np.array([min(len(set(r)), k) for r in relevant])
    idcg = np.array([discounts[:n].sum() for n in n_rel])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(idcg > 0, dcg / idcg, np.nan)


def mrr_at_k(topk: np.ndarray, relevant: Sequence, k: int) -> np.ndarray:
    """Reciprocal rank of the first relevant item within the top ``k`` (0 if none)."""
    hits = hits_matrix(topk[:, :k], relevant)
    first = np.argmax(hits, axis=1)
    return np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0)


def recall_curve(topk: np.ndarray, relevant: Sequence, ks: Sequence[int]) -> np.ndarray:
    """Mean recall@M for each M in ``ks`` (Figure-3-style curves)."""
    hits = hits_matrix(topk[:, : max(ks)], relevant)
    cum = np.cumsum(hits, axis=1)
    n_rel = np.array([len(set(r)) for r in relevant], dtype=float)
    valid = n_rel > 0
    return np.array([np.mean(cum[valid, k - 1] / n_rel[valid]) for k in ks])


def mean_over_users(values: np.ndarray) -> float:
    """Average a per-user metric, skipping users for whom it is undefined (``nan``)."""
    return float(np.nanmean(values))
