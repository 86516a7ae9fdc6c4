"""Data of the MT chapter: the reviews, the 10-fold split (Sec. 4) and each fold's vocabulary,
token tensors, validation split and documents.

A fold's vocabulary, word2vec vectors, user/item review documents and the tf-idf corpus come from
its training reviews only. Test reviews whose user or item has no training review are dropped
(every model needs a document or a vector for both). ``valid`` is carved from the training
reviews (``valid_frac``); every model of the chapter trains on ``fit_rows`` (training minus
validation) and uses ``valid`` for early stopping or tuning, never the test fold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import MTConfig


@dataclass
class MTCorpus:
    """Every review of a dataset with integer user/item ids, tokens and the 10-fold split."""

    df: pd.DataFrame
    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    tokens: list[list[str]]
    folds: list[np.ndarray]  # test indices of each fold
    files: list[Path] = field(default_factory=list)
    dropped_without_words: int = 0  # reviews of the file dropped because their text has no word

    @property
    def n_users(self) -> int:
        return int(self.users.max()) + 1

    @property
    def n_items(self) -> int:
        return int(self.items.max()) + 1


def load_corpus(cfg: MTConfig) -> MTCorpus:
    """Load, index and tokenize the reviews of ``cfg.dataset`` and draw the ``n_folds`` split."""
    from ...data import dataset_files, load_reviews

    data_dir = cfg.data_dir or None
    df = load_reviews(cfg.dataset, data_dir=data_dir)
    return corpus_from_frame(df, cfg, list(dataset_files(cfg.dataset, data_dir=data_dir)))


def corpus_from_frame(df: pd.DataFrame, cfg: MTConfig, files: Sequence[Path] = ()) -> MTCorpus:
    """Index, tokenize and split a review frame (``user, item, rating, text`` columns)."""
    from ...data.splits import kfold
    from ...data.text import tokenize

    missing = {"user", "item", "rating", "text"} - set(df.columns)
    if missing:
        raise ValueError(f"review frame lacks column(s) {sorted(missing)}")
    if cfg.max_reviews:
        df = df.iloc[: cfg.max_reviews]
    # a review without a word (an empty text field: 5-7 per Amazon file here) is nothing to learn to
    # generate: kept, it taught every language model to end a review before its first word
    tokens = [list(tokenize(t))[: cfg.max_review_len] for t in df["text"].astype(str)]
    has_words = np.array([len(t) > 0 for t in tokens], dtype=bool)
    df = df[has_words].reset_index(drop=True)
    tokens = [t for t, keep in zip(tokens, has_words) if keep]
    if len(df) < cfg.n_folds:
        raise ValueError(f"{len(df)} reviews with text cannot be split into {cfg.n_folds} folds")
    users = pd.factorize(df["user"])[0].astype(np.int64)
    items = pd.factorize(df["item"])[0].astype(np.int64)
    folds = [np.asarray(test, dtype=np.int64) for _, test in _folds(kfold(len(df), cfg.n_folds, cfg.seed))]
    return MTCorpus(df, users, items, df["rating"].to_numpy(float), tokens, folds, list(files),
                    dropped_without_words=int((~has_words).sum()))


def _folds(split) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs from :func:`xrec_core.data.splits.kfold`."""
    return [(np.asarray(a), np.asarray(b)) for a, b in split]


def dataset_table(corpus: MTCorpus) -> pd.DataFrame:
    """Table-1 style statistics of the data the run used, plus the share of reviews whose
    (user, text) repeats an earlier review (Amazon 2018 files list one review once per product
    variant; such copies land on both sides of a fold and flatter every model) and the number of
    reviews dropped because their text has no word."""
    from ...data.stats import dataset_stats

    stats = dataset_stats(corpus.df)
    stats["duplicate (user, text) %"] = 100.0 * float(corpus.df.duplicated(["user", "text"]).mean())
    stats["reviews without words (dropped)"] = corpus.dropped_without_words
    return stats


@dataclass
class FoldData:
    """One fold: train/test indices, the fold's vocabulary and the reviews as tensors."""

    k: int
    train: np.ndarray
    test: np.ndarray
    valid: np.ndarray  # part of ``train`` held out for early stopping and tuning
    vocab: Any
    itos: list[str]
    tensors: Any  # xrec_core.models.mt.ReviewTensors

    @property
    def fit_rows(self) -> np.ndarray:
        """The training reviews every model is fitted on: ``train`` minus ``valid``."""
        return np.setdiff1d(self.train, self.valid)


def fold_data(corpus: MTCorpus, k: int, cfg: MTConfig) -> FoldData:
    """Build fold ``k``: training vocabulary, padded token ids, test rows with known user and item."""
    from ...data.text import Vocabulary
    from ...models.mt import ReviewTensors

    test = corpus.folds[k]
    train = np.setdiff1d(np.arange(len(corpus.tokens)), test)
    seen_u, seen_i = np.zeros(corpus.n_users, bool), np.zeros(corpus.n_items, bool)
    seen_u[corpus.users[train]] = True
    seen_i[corpus.items[train]] = True
    test = test[seen_u[corpus.users[test]] & seen_i[corpus.items[test]]]
    rng = np.random.default_rng(cfg.seed + k)
    valid = np.sort(rng.choice(train, max(1, int(round(cfg.valid_frac * len(train)))), replace=False))
    vocab = Vocabulary.build([corpus.tokens[r] for r in train], min_freq=cfg.min_word_freq, max_size=cfg.max_vocab)
    itos = vocab_tokens(vocab)
    pad, bos, eos = (int(vocab.encode([t])[0]) for t in ("<PAD>", "<BOS>", "<EOS>"))
    tok = np.full((len(corpus.tokens), cfg.max_review_len + 1), pad, dtype=np.int64)
    for r, words in enumerate(corpus.tokens):
        ids = list(vocab.encode(words))
        tok[r, : len(ids)] = ids
        tok[r, len(ids)] = eos
    tensors = ReviewTensors(tok, corpus.users, corpus.items, corpus.ratings, corpus.n_users, corpus.n_items,
                            len(vocab), pad, bos, eos)
    return FoldData(k, train, test, valid, vocab, itos, tensors)


def vocab_tokens(vocab) -> list[str]:
    """Token string of every id of a :class:`~xrec_core.data.text.Vocabulary`."""
    return [str(t) for t in vocab.itos]


def decode(ids: Sequence[int], itos: list[str], eos_id: int, pad_id: int) -> list[str]:
    """Words of a token-id row, stopping at EOS/PAD."""
    out = []
    for i in ids:
        if i in (eos_id, pad_id):
            break
        out.append(itos[int(i)])
    return out


def bag_of_words(fold: FoldData, rows: np.ndarray, owners: np.ndarray, n: int):
    """Bag of words (n, V) of the reviews ``rows`` summed per owner (user or item): HFT and CTR read it."""
    import scipy.sparse as sp

    t = fold.tensors
    r_idx, c_idx = [], []
    for r in rows:
        ids = t.tokens[r][(t.tokens[r] != t.pad_id) & (t.tokens[r] != t.eos_id)]
        r_idx.extend([owners[r]] * len(ids))
        c_idx.extend(ids.tolist())
    return sp.csr_matrix((np.ones(len(r_idx)), (r_idx, c_idx)), shape=(n, t.vocab_size))

def item_documents(fold: FoldData, rows: np.ndarray) -> list[list[int]]:
    """Token ids of every item's reviews among ``rows``, concatenated (ConvMF+ reads them)."""
    t = fold.tensors
    docs: list[list[int]] = [[] for _ in range(t.n_items)]
    for row in rows:
        ids = t.tokens[row]
        docs[t.items[row]].extend(ids[(ids != t.pad_id) & (ids != t.eos_id)].tolist())
    return docs
