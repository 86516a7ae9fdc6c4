"""Data of the chapter "Ask the GRU": items with text, likes and tags, and the warm/cold folds of Sec. 4.1.

The protocol of Sec. 4.1: warm start (per-user 5-fold over likes) and cold start (5-fold over
items), papers with fewer than 5 likes always in training, users with fewer than 5 likes
removed, tags on fewer than 10 items removed. Each fold carves a validation split from its
training likes (warm: ~``valid_frac`` of each user's training likes; cold: ``valid_frac`` of the
training items), which early stopping and tuning use; the test fold is never looked at.

Data here: ``mter-cellphones`` (product titles as item text, reviews as likes, the MTER features
mentioned about an item as its tags) runs all six models; ``citeulike-t`` has only ``mult.dat``
(no word order), so it runs CTR, Embed and their MTL variants, the GRU rows being untestable;
``citeulike-a`` needs the user to download ``raw-data.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ...data.feedback import canonical_csr
from ...models.gru import Validation, pad_tokens
from .config import ORDER_SENSITIVE, GRUConfig


# --------------------------------------------------------------------------- data
@dataclass
class GRUData:
    """Items with text, likes and tags in the shape every model of the chapter consumes."""

    name: str
    likes: sp.csr_matrix  # (n_users, n_items) binary
    tokens: np.ndarray  # (n_items, T) word ids, 0 = <PAD>
    itos: list[str]  # word id -> word
    texts: list[str]  # display text per item
    tags: sp.csr_matrix  # (n_items, n_tags) binary
    tag_names: list[str]
    bow: sp.csr_matrix  # (n_items, n_words) counts, CTR's input
    ordered: bool  # whether ``tokens`` keeps the text's word order
    sentences: list[list[str]]  # CBOW corpus
    files: list[Path]

    def __post_init__(self) -> None:  # read without writes in a Ray worker (:func:`canonical_csr`)
        self.likes, self.tags, self.bow = canonical_csr(self.likes), canonical_csr(self.tags), canonical_csr(self.bow)

    @property
    def n_users(self) -> int:
        return self.likes.shape[0]

    @property
    def n_items(self) -> int:
        return self.likes.shape[1]


def _binary(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
    m.data[:] = 1.0
    return m


def _filter(likes: sp.csr_matrix, tags: sp.csr_matrix, cfg: GRUConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kept items (the ``max_items`` most liked when set), users with ``>= min_user_likes`` likes, tags on ``>= min_tag_items`` items."""
    items = np.arange(likes.shape[1])
    if cfg.max_items:
        pop = np.asarray(likes.sum(0)).ravel()
        items = np.sort(np.argsort(-pop, kind="stable")[: cfg.max_items])
    sub = likes[:, items]
    users = np.flatnonzero(np.diff(sub.tocsr().indptr) >= cfg.min_user_likes)
    tag_counts = np.asarray(tags[items].sum(0)).ravel()
    keep_tags = np.flatnonzero(tag_counts >= cfg.min_tag_items)
    return users, items, keep_tags


def _bow_from_tokens(token_ids: list[list[int]], itos: list[str]) -> sp.csr_matrix:
    """Counts of the non-special, non-stop-word tokens (CTR's preprocessed text, Sec. 4.1.2)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    drop = np.array([w.startswith("<") or w in ENGLISH_STOP_WORDS or not any(c.isalpha() for c in w) for w in itos])
    rows, cols = [], []
    for j, ids in enumerate(token_ids):
        ids = [i for i in ids if not drop[i]]
        rows += [j] * len(ids)
        cols += ids
    m = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(token_ids), len(itos)))
    m.sum_duplicates()
    return m


def _text_items(raw_texts: list[str], cfg: GRUConfig) -> tuple[np.ndarray, list[str], list[list[str]], sp.csr_matrix]:
    from ...data.text import Vocabulary, tokenize

    toks = [tokenize(t) for t in raw_texts]
    vocab = Vocabulary.build(toks, min_freq=cfg.min_word_freq)
    ids = [vocab.encode(t)[: cfg.max_len or None] for t in toks]
    return pad_tokens(ids, pad_id=vocab.pad_id), list(vocab.itos), toks, _bow_from_tokens(ids, list(vocab.itos))


def load_data(cfg: GRUConfig) -> GRUData:
    """Load ``cfg.dataset`` through :mod:`xrec_core.data` and apply the paper's filters."""
    from ...data import dataset_files, load_citeulike, load_mter, load_reviews, resolve

    data_dir = cfg.data_dir or None
    files = list(dataset_files(cfg.dataset, data_dir))
    kind = resolve(cfg.dataset, data_dir).kind
    if kind == "mter":
        return from_mter(load_mter(cfg.dataset, data_dir), cfg, files)
    if kind == "citeulike":
        d = load_citeulike(cfg.dataset, data_dir, min_user_likes=0, require_text=cfg.dataset == "citeulike-a")
        return from_citeulike(d, cfg, files)
    return from_reviews(load_reviews(cfg.dataset, data_dir), cfg, files)


def from_reviews(df: pd.DataFrame, cfg: GRUConfig, files: list[Path] | tuple = ()) -> GRUData:
    """A review table with item text: items with text are the documents, reviews the likes and the
    ``tags`` column (comma-separated) the items' tags."""
    df = df[df["item_text"].str.strip() != ""]
    row_users = pd.factorize(df["user"])[0]
    items, item_ids = pd.factorize(df["item"])
    likes = _binary(row_users, items, (int(row_users.max()) + 1, len(item_ids)))
    item_tags = [[t.strip() for t in str(tags).split(",") if t.strip()] for tags in df["tags"]]
    tag_ids, tag_names = pd.factorize(pd.Series([t for ts in item_tags for t in ts], dtype=object))
    tags = _binary(np.repeat(items, [len(ts) for ts in item_tags]), tag_ids, (len(item_ids), len(tag_names)))
    users, kept, keep_tags = _filter(likes, tags, cfg)
    first_text = df.groupby(items)["item_text"].first()
    texts = [str(first_text[j]) for j in kept]
    tokens, itos, sentences, bow = _text_items(texts, cfg)
    return GRUData(cfg.dataset, likes[users][:, kept].tocsr(), tokens, itos, texts, tags[kept][:, keep_tags].tocsr(),
                   [str(tag_names[t]) for t in keep_tags], bow, True, sentences, list(files))


def from_mter(d: Any, cfg: GRUConfig, files: list[Path] | tuple = ()) -> GRUData:
    """MTER reviews as a text-item dataset: product titles are the text, reviews the likes and the
    features mentioned in an item's reviews its tags."""
    rv = d.reviews
    likes = _binary(rv["user"].to_numpy(), rv["item"].to_numpy(), (d.n_users, d.n_items))
    feat_rows = np.repeat(rv["item"].to_numpy(), rv["features"].map(len).to_numpy())
    feat_cols = np.concatenate([np.asarray(f, dtype=np.int64) for f in rv["features"]])
    tags = _binary(feat_rows, feat_cols, (d.n_items, len(d.feature_names)))
    users, items, keep_tags = _filter(likes, tags, cfg)
    titles = [d.item_titles[j] if j < len(d.item_titles) else "" for j in items]
    tokens, itos, sentences, bow = _text_items(titles, cfg)
    return GRUData(cfg.dataset, likes[users][:, items].tocsr(), tokens, itos, titles, tags[items][:, keep_tags].tocsr(),
                   [d.feature_names[t] for t in keep_tags], bow, True, sentences, list(files))


def from_citeulike(d: Any, cfg: GRUConfig, files: list[Path] | tuple = ()) -> GRUData:
    """CiteULike likes and tags; ordered title + abstract text when present, else ``mult.dat``'s bags."""
    likes, tags = d.interactions(), d.tag_matrix()
    users, items, keep_tags = _filter(likes, tags, cfg)
    if d.texts is not None:
        texts = [d.texts[j] for j in items]
        tokens, itos, sentences, bow = _text_items(texts, cfg)
        ordered = True
        if d.bow is not None:
            bow = d.bow[items].tocsr()  # the provided preprocessed text, as the paper's CTR
    else:
        # No ordered text: expand mult.dat's counts into an (unordered) token sequence per item,
        # which is all an order-insensitive model sees (eq. 5 is a mean over tokens). A bag has no
        # order, so each gets a seeded random one (not the vocabulary's, which would make ``max_len``
        # keep the rarest ids) and is cut at ``max_len`` like ordered text: CiteULike-t's longest bag
        # has 1,558 tokens (median 29), and one such item made a whole batch that wide.
        bow = d.bow[items].tocsr()
        itos = ["<PAD>"] + list(d.vocabulary)
        rng = np.random.default_rng(cfg.seed)
        seqs = [rng.permutation(np.repeat(bow.indices[bow.indptr[j]:bow.indptr[j + 1]] + 1,
                                          bow.data[bow.indptr[j]:bow.indptr[j + 1]].astype(int)))
                for j in range(bow.shape[0])]
        tokens = pad_tokens([s.tolist() for s in seqs], pad_id=0, max_len=cfg.max_len or None)
        sentences = [[itos[i] for i in s] for s in seqs]
        texts = [" ".join(itos[i] for i in np.unique(s)) for s in seqs]
        ordered = False
    return GRUData(cfg.dataset, likes[users][:, items].tocsr(), tokens, itos, texts, tags[items][:, keep_tags].tocsr(),
                   [d.tag_names[t] for t in keep_tags], bow, ordered, sentences, list(files))


def data_statistics(data: GRUData) -> pd.DataFrame:
    """The paper's dataset description (Sec. 4.1) for our data."""
    n_likes = int(data.likes.nnz)
    lengths = (data.tokens != 0).sum(1)
    return pd.DataFrame([{
        "dataset": data.name, "users": data.n_users, "items": data.n_items, "likes": n_likes,
        "sparsity (%)": round(100 * (1 - n_likes / max(1, data.n_users * data.n_items)), 3),
        "tags": len(data.tag_names), "items with tags": int((np.diff(data.tags.indptr) > 0).sum()),
        "vocabulary": len(data.itos), "mean tokens per item": round(float(lengths.mean()), 1),
        "word order": "yes" if data.ordered else "no (bag of words)",
    }])


def testable_models(cfg: GRUConfig, data: GRUData) -> list[str]:
    """The configured models this data can test (order-sensitive ones need ordered text)."""
    return [m for m in cfg.model_list if data.ordered or m not in ORDER_SENSITIVE]


# --------------------------------------------------------------------------- folds
@dataclass
class Fold:
    """One train/test split plus the validation split carved from its training likes."""

    scenario: str
    index: int
    train: sp.csr_matrix  # (n_users, n_items) likes the models fit on (validation removed)
    known: np.ndarray  # (n_items,) items with own embeddings
    test_users: np.ndarray
    test_relevant: list[np.ndarray]
    exclude: sp.csr_matrix | None  # per-user items not ranked at test (warm: all training likes)
    candidates: np.ndarray | None  # items ranked at test (cold: the test items)
    valid: Validation

    def __post_init__(self) -> None:  # read without writes in a Ray worker (:func:`canonical_csr`)
        self.train = canonical_csr(self.train)
        self.exclude = None if self.exclude is None else canonical_csr(self.exclude)


def _rows(likes: sp.csr_matrix) -> list[np.ndarray]:
    return [likes.indices[likes.indptr[u]:likes.indptr[u + 1]] for u in range(likes.shape[0])]


def _from_rows(rows: list[np.ndarray], n_items: int) -> sp.csr_matrix:
    r = np.repeat(np.arange(len(rows)), [len(x) for x in rows])
    c = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    return _binary(r, c, (len(rows), n_items))


def make_folds(data: GRUData, cfg: GRUConfig) -> list[Fold]:
    """The first ``cfg.folds_run`` warm- and cold-start folds of the 5-fold protocol (Sec. 4.1)."""
    from ...data.splits import cold_start_folds, warm_start_folds

    n_items = data.n_items
    pop = np.asarray(data.likes.sum(0)).ravel()
    eligible = pop >= cfg.min_item_likes  # papers with < 5 likes always stay in training
    rows = _rows(data.likes)
    folds: list[Fold] = []
    warm = warm_start_folds([r[eligible[r]] for r in rows], k=cfg.n_folds, seed=cfg.seed, min_likes=1)
    for f, (_, test) in enumerate(warm[: cfg.folds_run]):
        rng = np.random.default_rng([cfg.seed, 0, f])  # a fold's validation split does not depend on folds_run
        train_rows = [np.setdiff1d(r, t) for r, t in zip(rows, test)]
        train_full = _from_rows(train_rows, n_items)
        # validation: ~valid_frac of each user's training likes on items that keep another like
        tpop = np.asarray(train_full.sum(0)).ravel()
        v_rows, fit_rows = [], []
        for r in train_rows:
            cand = r[tpop[r] >= 2]
            n_v = max(1, int(round(cfg.valid_frac * len(r)))) if len(r) >= cfg.min_user_likes else 0
            v = np.sort(rng.choice(cand, size=min(n_v, len(cand)), replace=False)) if n_v and len(cand) else np.zeros(0, np.int64)
            v_rows.append(v)
            fit_rows.append(np.setdiff1d(r, v))
        fit = _from_rows(fit_rows, n_items)
        known = np.asarray(fit.sum(0)).ravel() > 0
        valid = _validation(v_rows, fit, None, cfg, rng)
        users = np.array([u for u, t in enumerate(test) if len(t)], dtype=np.int64)
        folds.append(Fold("warm", f, fit, known, users, [test[u] for u in users], train_full, None, valid))
    cold = cold_start_folds(n_items, k=cfg.n_folds, seed=cfg.seed)
    for f, (_, test_items) in enumerate(cold[: cfg.folds_run]):
        rng = np.random.default_rng([cfg.seed, 1, f])
        test_items = np.sort(test_items[eligible[test_items]])
        is_test = np.zeros(n_items, bool)
        is_test[test_items] = True
        train_items = np.flatnonzero(~is_test & eligible)
        valid_items = np.sort(rng.choice(train_items, size=int(round(cfg.valid_frac * len(train_items))), replace=False))
        is_valid = np.zeros(n_items, bool)
        is_valid[valid_items] = True
        fit = _from_rows([r[~is_test[r] & ~is_valid[r]] for r in rows], n_items)
        known = np.asarray(fit.sum(0)).ravel() > 0
        valid = _validation([r[is_valid[r]] for r in rows], fit, valid_items, cfg, rng)
        test_rel = [r[is_test[r]] for r in rows]
        users = np.array([u for u, t in enumerate(test_rel) if len(t)], dtype=np.int64)
        folds.append(Fold("cold", f, fit, known, users, [test_rel[u] for u in users], None, test_items, valid))
    return folds


def _validation(v_rows: list[np.ndarray], fit: sp.csr_matrix, candidates: np.ndarray | None, cfg: GRUConfig,
                rng: np.random.Generator) -> Validation:
    users = np.array([u for u, v in enumerate(v_rows) if len(v)], dtype=np.int64)
    if cfg.eval_users and len(users) > cfg.eval_users:
        users = np.sort(rng.choice(users, size=cfg.eval_users, replace=False))
    return Validation(users, [v_rows[u] for u in users], fit if candidates is None else None, candidates)




def fold_summary(folds: list[Fold]) -> pd.DataFrame:
    """One row per fold: its test users, training likes, validation users and what is ranked at test."""
    return pd.DataFrame([{"scenario": f.scenario, "fold": f.index + 1, "test users": len(f.test_users),
                          "training likes": f.train.nnz, "validation users": len(f.valid.users),
                          "ranked items": "all but the user's training likes" if f.candidates is None else len(f.candidates)}
                         for f in folds])
