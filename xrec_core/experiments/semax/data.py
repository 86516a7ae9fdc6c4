"""The SEMAX chapter's data: time-sorted reviews, the temporal fit / validation / test split, the corpus.

Protocol (Sec. IV-A): reviews sorted by time; the earliest ``train_frac`` (80%) train, the rest
test. For every rating the user's and the item's earlier reviews (strictly earlier time) form
its histories; the rated review itself is never an input of the recommendation task. Words with
training frequency < ``min_word_freq`` (10) become ``<UNK>``. Our addition: the latest
``valid_frac`` of the training period is the validation split (early stopping, tuning), so every
model fits on the same earlier 72% of the reviews.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ...data.splits import temporal_parts
from ...models.semax import ReviewCorpus, ReviewSet
from .config import SemaxConfig


@dataclass
class SemaxData:
    """One dataset prepared for the protocol: time-sorted reviews, corpus and index splits."""

    reviews: pd.DataFrame  # time-sorted, with user_idx, item_idx, part in {"fit", "valid", "test"}
    corpus: ReviewCorpus
    fit_idx: np.ndarray
    valid_idx: np.ndarray
    test_idx: np.ndarray
    vocab: object  # xrec_core.data.text.Vocabulary
    files: list[Path] = field(default_factory=list)

    @property
    def train_idx(self) -> np.ndarray:
        return np.concatenate([self.fit_idx, self.valid_idx])

    @property
    def fit(self) -> ReviewSet:
        return ReviewSet(self.corpus, self.fit_idx)

    @property
    def valid(self) -> ReviewSet:
        return ReviewSet(self.corpus, self.valid_idx)

    @property
    def test(self) -> ReviewSet:
        return ReviewSet(self.corpus, self.test_idx)

    def train_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Number of training-period ratings of every test rating's user and item (Figs. 4-5)."""
        c = self.corpus
        tr = self.train_idx
        n_u = np.bincount(c.users[tr], minlength=c.n_users)
        n_i = np.bincount(c.items[tr], minlength=c.n_items)
        return n_u[c.users[self.test_idx]], n_i[c.items[self.test_idx]]


def prepare_reviews(df: pd.DataFrame, cfg: SemaxConfig, files: Sequence[Path] = ()) -> SemaxData:
    """Sort by time, split, tokenize, build the training vocabulary and the review corpus."""
    from ...data.text import Vocabulary, tokenize

    missing = {"user", "item", "rating", "time", "text"} - set(df.columns)
    if missing:
        raise ValueError(f"reviews lack column(s) {', '.join(sorted(missing))}")
    df = df.reset_index(drop=True)
    df = df.iloc[np.argsort(df["time"].to_numpy(), kind="stable")].reset_index(drop=True)
    if cfg.max_reviews:
        df = df.iloc[: cfg.max_reviews].reset_index(drop=True)
    fit_idx, valid_idx, test_idx = temporal_parts(df["time"].to_numpy(), cfg.train_frac, cfg.valid_frac)
    part = np.empty(len(df), dtype=object)
    part[fit_idx], part[valid_idx], part[test_idx] = "fit", "valid", "test"
    df = df.assign(part=part,
                   user_idx=pd.factorize(df["user"])[0].astype(np.int64),
                   item_idx=pd.factorize(df["item"])[0].astype(np.int64))
    tokens = [tokenize(t) for t in df["text"].astype(str)]
    n_train = len(fit_idx) + len(valid_idx)
    vocab = Vocabulary.build(tokens[:n_train], min_freq=cfg.min_word_freq)  # training period only
    ids = [vocab.encode(t) for t in tokens]
    corpus = ReviewCorpus.build(df["user_idx"].to_numpy(), df["item_idx"].to_numpy(), df["rating"].to_numpy(),
                                df["time"].to_numpy(), ids, vocab_size=len(vocab), pad_id=vocab.pad_id,
                                unk_id=vocab.unk_id, max_review_len=cfg.max_review_len, max_history=cfg.max_history)
    return SemaxData(reviews=df, corpus=corpus, fit_idx=fit_idx, valid_idx=valid_idx, test_idx=test_idx, vocab=vocab,
                     files=list(files))


def load_data(cfg: SemaxConfig) -> SemaxData:
    """Load ``cfg.dataset`` with :func:`xrec_core.data.load_reviews` and prepare it."""
    from ...data import dataset_files, load_reviews

    df = load_reviews(cfg.dataset, data_dir=cfg.data_dir or None)
    return prepare_reviews(df, cfg, dataset_files(cfg.dataset, data_dir=cfg.data_dir or None))


def data_statistics(data: SemaxData) -> pd.DataFrame:
    """Table 1-style statistics of the data as used, per part of the temporal split."""
    rows = []
    df = data.reviews
    c = data.corpus
    for name, idx in (("all", np.arange(len(df))), ("fit", data.fit_idx), ("valid", data.valid_idx), ("test", data.test_idx)):
        sub = df.iloc[idx]
        n_u, n_i = (c.user_hist[idx] >= 0).sum(1), (c.item_hist[idx] >= 0).sum(1)
        rows.append({
            "part": name, "reviews": len(sub), "users": sub["user"].nunique(), "items": sub["item"].nunique(),
            "mean rating": round(float(sub["rating"].mean()), 3),
            "words/review": round(float(c.lengths[idx].mean()), 1),
            "user history (kept)": round(float(n_u.mean()), 2), "item history (kept)": round(float(n_i.mean()), 2),
            "empty user history": int((n_u == 0).sum()),
            "from": str(pd.to_datetime(sub["time"].min(), unit="s").date()),
            "to": str(pd.to_datetime(sub["time"].max(), unit="s").date()),
        })
    out = pd.DataFrame(rows)
    out.attrs["vocabulary"] = len(data.vocab)
    return out
