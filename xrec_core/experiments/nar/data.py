"""The chapter's data: positives, phrase-level mentions, the Eq. 1 features and the per-user split (Sec. 5.1).

4-5 star reviews are positives; (feature, sentiment) mentions come from the MTER tuples
(``mter-cellphones``, real Sentires output) or from our Sentires stand-in
(:mod:`xrec_core.models.nar.sentires`) on raw Amazon reviews. Split: per user 4:1 for users with
more than 5 positives (others train only); each user's test positives are ranked among 100
sampled non-positive candidates. Validation (early stopping, tuning): one held-out *training*
positive per test user, ranked among sampled items that are not among the user's training
positives (the test fold is never read).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .config import PAPER_DATASET, PAPER_FEATURES, PAPER_TABLE2, NARConfig


@dataclass
class NARData:
    """Positives, features and the split of one dataset."""

    n_users: int
    n_items: int
    feature_names: list[str]
    f_u: np.ndarray  # (n_users, P) normalized Eq. 1 user features (training reviews)
    f_i: np.ndarray  # (n_items, P)
    train: sp.csr_matrix  # (n_users, n_items) positives
    test_users: np.ndarray
    test_items: list[np.ndarray]
    candidates: np.ndarray  # (n_test_users, n_candidates) negatives
    ground_truth: list[np.ndarray]  # per user, features with sentiment (Eq. 10's g_u)
    stats: pd.DataFrame
    files: list[Path]


def reviews_with_mentions(cfg: NARConfig) -> tuple[pd.DataFrame, list[str], list[Path]]:
    """The dataset's reviews with their (feature id, sentiment) mentions, the feature names and the files read."""
    from ...data import dataset_files, load_mter, load_reviews
    from ...models.nar.sentires import SentimentExtractor

    if cfg.dataset == "mter-cellphones":
        m = load_mter(cfg.dataset, cfg.data_dir or None)
        df = m.reviews.copy()
        df["mentions"] = [list(zip(f, s)) for f, s in zip(df["features"], df["sentiments"])]
        return df[["user", "item", "rating", "mentions"]], list(m.feature_names), dataset_files(cfg.dataset, cfg.data_dir or None)
    df = load_reviews(cfg.dataset, cfg.data_dir or None)
    df["user"] = df["user"].astype("category").cat.codes.astype(np.int64)
    df["item"] = df["item"].astype("category").cat.codes.astype(np.int64)
    n_feat = cfg.n_features or PAPER_FEATURES.get(cfg.dataset, 500)
    texts = (df["summary"].fillna("") + ". " + df["text"].fillna("")).tolist()
    extractor = SentimentExtractor(n_features=n_feat).fit(texts)
    df["mentions"] = [[(k, s) for k, s, _ in ms] for ms in extractor.transform(texts)]
    return df[["user", "item", "rating", "mentions"]], extractor.features_, dataset_files(cfg.dataset, cfg.data_dir or None)


def prepare(cfg: NARConfig, seed: int, mentions: tuple[pd.DataFrame, list[str], list[Path]] | None = None) -> NARData:
    """Positives (rating >= 4), the per-user 4:1 split, candidates and Eq. 1 features from training reviews.

    ``mentions`` (the reviews with their extracted (feature, sentiment) mentions) can be passed in
    so that several seeds share one extraction.
    """
    from ...data.splits import per_user_holdout, sample_candidates
    from ...data.stats import dataset_stats, k_core
    from ...models.nar.features import item_features, mention_counts, user_features

    df, feature_names, files = mentions if mentions is not None else reviews_with_mentions(cfg)
    if cfg.max_users:
        keep = np.random.default_rng(0).permutation(df["user"].unique())[: cfg.max_users]
        df = df[df["user"].isin(keep)]
    df = k_core(df, cfg.k_core).copy()
    df["user"] = df["user"].astype("category").cat.codes.astype(np.int64)
    df["item"] = df["item"].astype("category").cat.codes.astype(np.int64)
    n_users, n_items, P = int(df["user"].max()) + 1, int(df["item"].max()) + 1, len(feature_names)
    pos = df[df["rating"] >= cfg.positive_rating]
    user_pos = [np.zeros(0, np.int64)] * n_users
    for u, g in pos.groupby("user"):
        user_pos[int(u)] = np.unique(g["item"].to_numpy())
    tr, te, kept = per_user_holdout(user_pos, 0.8, cfg.min_positives, seed)
    train_lists = list(user_pos)
    for u, t in zip(kept, tr):
        train_lists[u] = t
    train = _csr(train_lists, n_items)
    cands = sample_candidates([user_pos[u] for u in kept], n_items, n=min(cfg.n_candidates, n_items - 1 - max(
        (len(user_pos[u]) for u in kept), default=0)), seed=seed)
    # features from training reviews only (test reviews' text would leak the held-out interactions)
    test_pairs = {(int(u), int(i)) for u, items in zip(kept, te) for i in items}
    is_train = np.array([(u, i) not in test_pairs for u, i in zip(df["user"], df["item"])])
    t_u, t_i, s_i = mention_counts(df["user"][is_train], df["item"][is_train], df["mentions"][is_train], n_users, n_items, P)
    T = float(df["rating"].max())
    f_u, f_i = user_features(t_u, T) / T, item_features(t_i, s_i, T) / T
    t_all, _, _ = mention_counts(df["user"], df["item"], df["mentions"], n_users, n_items, P)
    gt = [np.flatnonzero(t_all[u]) for u in range(n_users)]
    stats = dataset_stats(pos.assign(text=""), cfg.dataset).drop(columns=["words / review"])
    stats["features"] = P
    stats["positives"] = int(train.sum()) + sum(len(t) for t in te)
    stats["test users"] = len(kept)
    return NARData(n_users, n_items, list(feature_names), f_u.astype(np.float32), f_i.astype(np.float32), train, kept,
                   te, cands, gt, stats, files)


def _csr(item_lists: list[np.ndarray], n_items: int) -> sp.csr_matrix:
    """Binary (len(item_lists), n_items) matrix with row ``u`` set at ``item_lists[u]``."""
    rows = np.repeat(np.arange(len(item_lists)), [len(x) for x in item_lists])
    cols = np.concatenate(item_lists) if item_lists else np.zeros(0, np.int64)
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols.astype(np.int64))), shape=(len(item_lists), n_items))


def synthetic_data(seed: int = 0, n_users: int = 40, n_items: int = 30, n_features: int = 6) -> NARData:
    """A small made-up dataset in the chapter's shape, for tests and the tiny benchmarks.

    Popularity-skewed positives (8 per user), random Eq. 1 features, the paper's 4:1 split per user
    and 10 sampled candidates per test user; three ground-truth features per user.
    """
    from ...data.splits import per_user_holdout, sample_candidates

    rng = np.random.default_rng(seed)
    pop = rng.random(n_items) ** 3
    positives = [np.unique(rng.choice(n_items, size=8, replace=False, p=pop / pop.sum())) for _ in range(n_users)]
    train_lists, test, kept = per_user_holdout(positives, 0.8, 5, seed)
    lists = list(positives)
    for u, t in zip(kept, train_lists):
        lists[u] = t
    candidates = sample_candidates([positives[u] for u in kept], n_items, n=10, seed=seed)
    truth = [np.sort(rng.choice(n_features, size=3, replace=False)) for _ in range(n_users)]
    return NARData(n_users, n_items, [f"w{k}" for k in range(n_features)],
                   rng.random((n_users, n_features)).astype(np.float32),
                   rng.random((n_items, n_features)).astype(np.float32), _csr(lists, n_items), kept, test, candidates,
                   truth, pd.DataFrame(), [])


def validation_split(data: NARData, cfg: NARConfig, seed: int):
    """Training positives minus one held-out positive per test user, and that positive among sampled candidates.

    Returns ``(train, valid)``: a :class:`~xrec_core.models.nar.models.FeatureInteractions` and a
    :class:`~xrec_core.models.nar.models.CandidateValidation`. Candidates are drawn among items
    that are not the user's *training* positives (the test fold is not consulted).
    """
    from ...data.splits import hold_out_one, sample_candidates
    from ...models.nar.models import CandidateValidation, FeatureInteractions

    train_lists = [data.train[u].indices for u in range(data.n_users)]
    remaining, users, held = hold_out_one(train_lists, data.test_users, seed=seed, min_remaining=1)
    n_cand = min(cfg.valid_candidates, data.n_items - 1 - max((len(train_lists[u]) for u in users), default=0))
    cands = sample_candidates([train_lists[u] for u in users], data.n_items, n=n_cand, seed=seed + 1)
    pools = np.column_stack([held, cands]) if len(users) else np.zeros((0, n_cand + 1), np.int64)  # (V, 1 + C)
    return (FeatureInteractions(_csr(remaining, data.n_items), data.f_u, data.f_i),
            CandidateValidation(users, pools, cfg.k))


def table2(data: NARData, cfg: NARConfig) -> pd.DataFrame:
    """Table 2 on our data beside the paper's (users, items, positive interactions, density, features)."""
    n_pos = int(data.train.nnz) + sum(len(t) for t in data.test_items)
    ours = {"source": f"ours ({cfg.dataset})", "users": data.n_users, "items": data.n_items, "interactions": n_pos,
            "density (%)": 100.0 * n_pos / (data.n_users * data.n_items), "features": len(data.feature_names),
            "test users": len(data.test_users)}
    rows = [ours]
    if cfg.dataset in PAPER_TABLE2:
        u, i, n, f = PAPER_TABLE2[cfg.dataset]
        rows.append({"source": f"paper ({PAPER_DATASET[cfg.dataset][1]})", "users": u, "items": i, "interactions": n,
                     "density (%)": 100.0 * n / (u * i), "features": f, "test users": None})
    return pd.DataFrame(rows)


def explain_sample(data: NARData, n: int, seed: int) -> np.ndarray:
    """``n`` users with ground-truth features, drawn by ``seed`` (sorted): whose explanation vectors the units keep."""
    users = np.array([u for u, g in enumerate(data.ground_truth) if len(g)], dtype=np.int64)
    return np.sort(np.random.default_rng(seed).permutation(users)[:n])
