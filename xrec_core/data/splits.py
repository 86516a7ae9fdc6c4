"""The splits the papers use. All are deterministic given ``seed``.

* :func:`kfold`: k-fold cross-validation over rows (MT).
* :func:`temporal_split`: earliest ``frac`` of rows train, the rest test (SEMAX); :func:`n_before`
  cuts each row's history to the reviews strictly before it; :func:`temporal_parts` also carves
  the latest part of the training period off as a validation split.
* :func:`warm_start_folds` / :func:`cold_start_folds`: Wang & Blei (2011) in-matrix and
  out-of-matrix 5-fold protocols (Ask the GRU).
* :func:`per_user_holdout` + :func:`sample_candidates`: per-user 4:1 split ranked among 100
  sampled candidates (NAR/CAR/CNR); :func:`hold_out_one` carves a validation positive per user
  from the training positives.
* :func:`random_split`: PETER-style random train/validation/test split of (user, item) rows in
  which every user and item of the held-out parts also occurs in training (MVAE).
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


def temporal_parts(times: Sequence[float], train_frac: float, valid_frac: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split time-sorted rows into fit / validation / test index arrays.

    The earliest ``train_frac`` of the rows form the training period and the rest the test period
    (SEMAX, Sec. IV-A1); the latest ``valid_frac`` of the training period is the validation split,
    so validation, like the test, lies in the future of every row a model fits on.
    ``times`` must be sorted ascending.
    """
    times = np.asarray(times)
    if np.any(np.diff(times) < 0):
        raise ValueError("temporal_parts needs rows sorted by time")
    n = len(times)
    n_train = int(round(train_frac * n))
    n_valid = int(round(valid_frac * n_train))
    if n_train - n_valid < 1 or n - n_train < 1:
        raise ValueError(f"{n} rows are too few for train_frac={train_frac}, valid_frac={valid_frac}")
    idx = np.arange(n)
    return idx[: n_train - n_valid], idx[n_train - n_valid: n_train], idx[n_train:]


def n_before(keys: Sequence, times: Sequence[float]) -> np.ndarray:
    """For each row, how many rows with the same key (user or item) are strictly earlier.

    With ``documents_by(df, key)`` (each key's reviews in chronological order) the history of row
    ``j`` is ``docs[keys[j]][:n_before[j]]``: only reviews written strictly before it, never one
    written at the same time or later (SEMAX's "history strictly before each rating").
    """
    keys = np.asarray(keys)
    times = np.asarray(times)
    order = np.lexsort((times, keys))  # by key, then time
    k_sorted, t_sorted = keys[order], times[order]
    new_key = np.r_[True, k_sorted[1:] != k_sorted[:-1]]
    new_time = new_key | np.r_[True, t_sorted[1:] != t_sorted[:-1]]
    pos = np.arange(len(order))
    key_start = np.maximum.accumulate(np.where(new_key, pos, 0))  # first row of the key's run
    tie_start = np.maximum.accumulate(np.where(new_time, pos, 0))  # first row of the (key, time) run
    out = np.empty(len(order), dtype=np.int64)
    out[order] = tie_start - key_start
    return out


def _like_counts(likes: Sequence[np.ndarray]) -> np.ndarray:
    """Number of likes per item over all users' like lists."""
    flat = np.concatenate([np.asarray(x, dtype=np.int64) for x in likes]) if len(likes) else np.zeros(0, np.int64)
    return np.bincount(flat) if len(flat) else np.zeros(0, np.int64)


def warm_start_folds(likes: Sequence[np.ndarray], k: int = 5, seed: int = 0,
                     min_likes: int = 5) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
    """Per-user k-fold over each user's likes (in-matrix prediction, Wang & Blei 2011; Ask the GRU Sec. 4.1).

    Returns ``k`` pairs ``(train_likes, test_likes)``, each a list with one array per user.
    Users with fewer than ``min_likes`` likes, and likes of papers with fewer than ``min_likes``
    likes in all, stay in training in every fold ("they cannot be evaluated properly"); each
    user's other likes are shuffled with ``seed`` and cut into ``k`` near-equal parts.
    """
    if k < 2:
        raise ValueError(f"k must be >= 2, got {k}")
    rng = np.random.default_rng(seed)
    popular = _like_counts(likes) >= min_likes  # (n_items,)
    always, per_user = [], []
    for items in likes:
        items = np.asarray(items, dtype=np.int64)
        if len(items) < min_likes:
            always.append(items)
            per_user.append(None)
            continue
        split = popular[items]
        always.append(items[~split])
        per_user.append(np.array_split(rng.permutation(items[split]), k))
    folds = []
    for i in range(k):
        train, test = [], []
        for keep, parts in zip(always, per_user):
            if parts is None:
                train.append(np.sort(keep))
                test.append(np.zeros(0, dtype=np.int64))
            else:
                test.append(np.sort(parts[i]))
                train.append(np.sort(np.concatenate([keep] + [p for j, p in enumerate(parts) if j != i])))
        folds.append((train, test))
    return folds


def cold_start_folds(n_items: int, k: int = 5, seed: int = 0, item_likes: Sequence[int] | None = None,
                     min_likes: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """k-fold over items (out-of-matrix prediction): test items never appear in training.

    With ``item_likes`` (likes per item), papers with fewer than ``min_likes`` likes are never
    test items (Ask the GRU Sec. 4.1); without it every item is split, as :func:`kfold`.
    """
    if item_likes is None:
        return kfold(n_items, k, seed)
    counts = np.asarray(item_likes)
    if len(counts) != n_items:
        raise ValueError(f"item_likes has {len(counts)} entries for {n_items} items")
    eligible = np.flatnonzero(counts >= min_likes)
    folds = []
    for _, test_pos in kfold(len(eligible), k, seed):
        test = eligible[test_pos]
        folds.append((np.setdiff1d(np.arange(n_items), test), test))
    return folds


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


def hold_out_one(user_items: Sequence[np.ndarray], users: Sequence[int], seed: int = 0,
                 min_remaining: int = 1) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Move one random positive of each of ``users`` out of its list (a validation split of training data).

    Users left with fewer than ``min_remaining`` positives keep all of theirs. Returns
    ``(remaining, held_users, held_items)``: the lists without the held-out items and, per held-out
    user, the item taken.
    """
    rng = np.random.default_rng(seed)
    remaining = [np.asarray(items) for items in user_items]
    held_users, held_items = [], []
    for u in users:
        items = remaining[u]
        if len(items) < min_remaining + 1:
            continue
        pick = int(rng.integers(len(items)))
        held_users.append(int(u))
        held_items.append(int(items[pick]))
        remaining[u] = np.delete(items, pick)
    return remaining, np.array(held_users, dtype=np.int64), np.array(held_items, dtype=np.int64)


def liked_pair_keys(likes) -> np.ndarray:
    """Sorted ``user * n_items + item`` keys of every like of a ``(n_users, n_items)`` sparse matrix.

    The lookup table :func:`sample_unliked` searches (one ``int64`` per like).
    """
    import scipy.sparse as sp

    likes = sp.csr_matrix(likes)
    n_users, n_items = likes.shape
    counts = np.diff(likes.indptr)
    return np.sort(np.repeat(np.arange(n_users, dtype=np.int64), counts) * n_items + likes.indices.astype(np.int64))


def sample_unliked(users: np.ndarray, pool: np.ndarray, liked_keys: np.ndarray, n_items: int,
                   rng: np.random.Generator, max_tries: int = 50) -> np.ndarray:
    """One negative item per entry of ``users``, uniform over ``pool`` among the items that user has not liked.

    Rejection sampling: draws that hit a like (``liked_keys`` from :func:`liked_pair_keys`) are
    redrawn, up to ``max_tries`` rounds (a user who liked nearly all of ``pool`` may keep a clash
    after that; with the sparse like matrices of the papers this does not happen in practice).
    Used for the one-positive-one-negative mini-batches of Ask the GRU (Sec. 4.1.2).
    """
    users = np.asarray(users, dtype=np.int64)
    pool = np.asarray(pool, dtype=np.int64)
    if pool.size == 0:
        raise ValueError("cannot sample negatives from an empty item pool")
    neg = pool[rng.integers(0, pool.size, size=users.size)]
    for _ in range(max_tries if liked_keys.size else 0):
        keys = users * n_items + neg
        pos = np.searchsorted(liked_keys, keys)
        clash = (pos < liked_keys.size) & (liked_keys[np.minimum(pos, liked_keys.size - 1)] == keys)
        if not clash.any():
            break
        neg[clash] = pool[rng.integers(0, pool.size, size=int(clash.sum()))]
    return neg


def random_split(users: Sequence[int], items: Sequence[int], seed: int,
                 ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> dict[str, np.ndarray]:
    """PETER-style random split of rows: ``{"train", "valid", "test"}`` sorted row indices.

    The rows are shuffled with ``seed``; the first shuffled row of every user and of every item
    goes to training, so every user and item of the validation and test parts is seen in
    training; the remaining rows are cut by ``ratios`` (test first, then validation), so
    training is a little larger than ``ratios[0]`` on sparse data.

    Raises
    ------
    ValueError
        When too few rows remain after reserving one training row per user and item.
    """
    users, items = np.asarray(users), np.asarray(items)
    if users.shape != items.shape:
        raise ValueError(f"users and items differ in length: {users.shape} vs {items.shape}")
    order = np.random.default_rng(seed).permutation(len(users))
    forced = np.zeros(len(order), dtype=bool)
    forced[np.unique(users[order], return_index=True)[1]] = True
    forced[np.unique(items[order], return_index=True)[1]] = True
    rest = order[~forced]
    n_test, n_valid = int(round(ratios[2] * len(order))), int(round(ratios[1] * len(order)))
    if n_test + n_valid > len(rest):
        raise ValueError("too few samples to split: every user/item needs one training sample")
    test, valid, train_rest = rest[:n_test], rest[n_test:n_test + n_valid], rest[n_test + n_valid:]
    return {"train": np.sort(np.concatenate([order[forced], train_rest])), "valid": np.sort(valid), "test": np.sort(test)}
