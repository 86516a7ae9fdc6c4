"""The splits the papers use. All are deterministic given ``seed``.

* :func:`kfold`: k-fold cross-validation over rows (MT).
* :func:`temporal_split`: earliest ``frac`` of rows train, the rest test (SEMAX).
* :func:`warm_start_folds` / :func:`cold_start_folds`: Wang & Blei (2011) in-matrix and
  out-of-matrix 5-fold protocols (Ask the GRU).
* :func:`per_user_holdout` + :func:`sample_candidates`: per-user 4:1 split ranked among 100
  sampled candidates (NAR/CAR/CNR).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def kfold(n: int, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Shuffle ``range(n)`` with ``seed`` and cut it into ``k`` folds: ``[(train_idx, test_idx), ...]``."""
    if not 2 <= k <= n:
        raise ValueError(f"k must be in [2, n={n}], got {k}")
    perm = np.random.default_rng(seed).permutation(n)
    folds = np.array_split(perm, k)
    return [(np.sort(np.concatenate([f for j, f in enumerate(folds) if j != i])), np.sort(folds[i])) for i in range(k)]


def temporal_split(times: Sequence[float], frac: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """Earliest ``frac`` of rows (by time, ties by row order) train; the rest test.

    Every training time is <= every test time.
    """
    times = np.asarray(times)
    order = np.argsort(times, kind="stable")
    cut = int(round(frac * len(times)))
    return np.sort(order[:cut]), np.sort(order[cut:])


def warm_start_folds(likes: Sequence[np.ndarray], k: int = 5, seed: int = 0,
                     min_likes: int = 5) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
    """Per-user k-fold over each user's likes (in-matrix prediction, Wang & Blei 2011).

    Returns ``k`` pairs ``(train_likes, test_likes)``, each a list with one array per user.
    Users with fewer than ``min_likes`` likes keep all of them in training in every fold.
    """
    rng = np.random.default_rng(seed)
    per_user = []
    for items in likes:
        items = np.asarray(items)
        if len(items) < min_likes:
            per_user.append(None)
        else:
            per_user.append(np.array_split(rng.permutation(items), k))
    folds = []
    for i in range(k):
        train, test = [], []
        for items, parts in zip(likes, per_user):
            if parts is None:
                train.append(np.sort(np.asarray(items)))
                test.append(np.zeros(0, dtype=np.int64))
            else:
                test.append(np.sort(parts[i]))
                train.append(np.sort(np.concatenate([p for j, p in enumerate(parts) if j != i])))
        folds.append((train, test))
    return folds


def cold_start_folds(n_items: int, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """k-fold over items (out-of-matrix prediction): test items never appear in training."""
    return kfold(n_items, k, seed)


def per_user_holdout(user_items: Sequence[np.ndarray], train_frac: float = 0.8, min_positives: int = 5,
                     seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Split each user's positives ``train_frac`` : rest, for users with more than ``min_positives``.

    Returns ``(train, test, kept_users)``; users with ``<= min_positives`` positives are dropped.
    Each kept user has at least one train and one test positive.
    """
    rng = np.random.default_rng(seed)
    train, test, kept = [], [], []
    for u, items in enumerate(user_items):
        items = np.unique(np.asarray(items))
        if len(items) <= min_positives:
            continue
        perm = rng.permutation(items)
        cut = min(max(1, int(round(train_frac * len(perm)))), len(perm) - 1)
        train.append(np.sort(perm[:cut]))
        test.append(np.sort(perm[cut:]))
        kept.append(u)
    return train, test, np.array(kept, dtype=np.int64)


def sample_candidates(user_positives: Sequence[np.ndarray], n_items: int, n: int = 100,
                      seed: int = 0) -> np.ndarray:
    """``n`` distinct negatives per user, never among that user's positives: ``(n_users, n)``."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(user_positives), n), dtype=np.int64)
    for u, pos in enumerate(user_positives):
        pos = set(int(p) for p in pos)
        if n_items - len(pos) < n:
            raise ValueError(f"user {u} has only {n_items - len(pos)} non-positive items, {n} candidates asked")
        chosen: list[int] = []
        seen = set(pos)
        while len(chosen) < n:
            for c in rng.integers(0, n_items, size=2 * (n - len(chosen))):
                c = int(c)
                if c not in seen:
                    seen.add(c)
                    chosen.append(c)
                    if len(chosen) == n:
                        break
        out[u] = chosen
    return out
