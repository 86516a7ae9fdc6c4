"""Chapter "Ask the GRU" (Bansal, Belanger & McCallum, RecSys 2016): config and protocol.

The protocol of Sec. 4.1: warm start (per-user 5-fold over likes) and cold start (5-fold over
items), papers with fewer than 5 likes always in training, users with fewer than 5 likes
removed, tags on fewer than 10 items removed. Six models (GRU, Embed, CTR and their ``-MTL``
variants, Table 1) are trained per fold; Recall@M (M = 1..100, Figure 3), the reciprocal
hit-rank HR@10 (Sec. 4.2) and cold-start tag Recall@50 are averaged per user (per article for
tags). Issue 9 adds MostPop and a tuned BPR on the warm-start folds.

Data here (see the chapter): ``mter-cellphones`` (product titles as item text, reviews as
likes, the MTER features mentioned about an item as its tags) runs all six models;
``citeulike-t`` has only ``mult.dat`` (no word order), so it runs CTR, Embed and their MTL
variants, the GRU rows being "not testable here"; ``citeulike-a`` needs the user to download
``raw-data.csv``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..config import ConfigError, ExperimentConfig
from ..metrics.ranking import recall_at_k, recall_curve
from ..metrics.significance import higher_across_folds
from ..records import Claim, MetricRow, RunRecorder, UnitStore
from ..models.gru import TextRecommender, Validation, pad_tokens, pretrain_cbow, reciprocal_hit_rank, topk_from_factors

log = logging.getLogger(__name__)

NEURAL = ("GRU-MTL", "GRU", "Embed-MTL", "Embed")
CTR_MODELS = ("CTR-MTL", "CTR")
MODELS = ("GRU-MTL", "GRU", "CTR-MTL", "CTR", "Embed-MTL", "Embed")
BASELINES = ("MostPop", "BPR (tuned)")
ORDER_SENSITIVE = ("GRU", "GRU-MTL")
SCENARIOS = ("warm", "cold")
M_MAX = 100
METRIC = {"warm": "Recall@50 warm (%)", "cold": "Recall@50 cold (%)"}
TAG_METRIC = "Tag Recall@50 cold (%)"
HR_METRIC = "HR@10 warm"


@dataclass
class GRUConfig(ExperimentConfig):
    """Settings of the chapter; defaults are the paper's (Sec. 4.1.2) unless noted.

    ``k_h1`` is read as the per-direction size of the bidirectional layer. ``lam`` (MTL weight),
    ``tag_neg_weight`` (c'), ``lr`` and the early-stopping schedule are not given in the paper
    (our choices). ``folds_run`` < ``n_folds`` runs only the first folds of the 5-fold split
    (CPU scales); ``max_items`` > 0 keeps the most-liked items only (smoke); ``eval_users`` > 0
    caps the users ranked at validation checks.
    """

    dataset: str = "mter-cellphones"
    models: str = ",".join(MODELS)
    baselines: bool = True
    # text encoders (Sec. 4.1.2)
    k: int = 200
    k_h1: int = 400
    dropout_emb: float = 0.1
    dropout_h1: float = 0.5
    dropout_h2: float = 0.3
    min_word_freq: int = 5
    max_len: int = 300
    cbow: bool = True
    cbow_epochs: int = 5
    cbow_window: int = 5
    # training (Sec. 4.1.2)
    lam: float = 0.5
    alpha: float = 10.0
    eps: float = 1e-8
    tag_neg_weight: float = 0.01
    user_reg: float = 0.01
    batch_users: int = 512
    lr: float = 1e-3
    max_updates: int = 20000
    eval_every: int = 500
    patience: int = 4
    eval_users: int = 0
    # CTR (Wang & Blei 2011 settings, Sec. 4.1.2)
    ctr_k: int = 200
    ctr_lambda_u: float = 0.01
    ctr_lambda_v: float = 100.0
    ctr_a: float = 1.0
    ctr_b: float = 0.01
    ctr_max_iter: int = 50
    ctr_lda_iter: int = 20
    # protocol (Sec. 4.1)
    n_folds: int = 5
    folds_run: int = 5
    min_item_likes: int = 5
    min_user_likes: int = 5
    min_tag_items: int = 10
    valid_frac: float = 0.1
    max_items: int = 0
    bpr_epochs: int = 50
    n_saliency: int = 12

    SCALES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": dict(max_items=300, k=16, k_h1=16, ctr_k=16, ctr_max_iter=5, ctr_lda_iter=5, batch_users=64,
                      max_updates=40, eval_every=20, patience=2, folds_run=1, cbow_epochs=2, min_word_freq=2,
                      min_tag_items=3, bpr_epochs=5, n_saliency=4),
        "full": dict(k=32, k_h1=32, ctr_k=32, ctr_max_iter=10, ctr_lda_iter=10, batch_users=128, max_updates=80,
                     eval_every=40, patience=2, lr=0.01, max_len=32, folds_run=5, eval_users=500, bpr_epochs=10,
                     cbow_epochs=3),
        "paper": {},
    }
    REQUIRES: ClassVar[tuple[str, ...]] = ("item_text", "tags")

    def validate(self) -> None:
        super().validate()
        bad = sorted(set(self.model_list) - set(MODELS))
        if bad:
            raise ConfigError(f"Unknown model(s) {', '.join(bad)}; valid: {', '.join(MODELS)}")
        if not 1 <= self.folds_run <= self.n_folds:
            raise ConfigError(f"folds_run must be in 1..n_folds={self.n_folds}, got {self.folds_run}")
        if not 0.0 <= self.lam <= 1.0:
            raise ConfigError(f"lam must be in [0, 1], got {self.lam}")

    @property
    def model_list(self) -> list[str]:
        return [m.strip() for m in self.models.split(",") if m.strip()]

    @property
    def paper_dataset(self) -> str:
        """The paper dataset our rows are compared with (citeulike-a for the stand-in MTER data)."""
        return self.dataset if self.dataset.startswith("citeulike") else "citeulike-a"


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
    from ..data.text import Vocabulary, tokenize

    toks = [tokenize(t) for t in raw_texts]
    vocab = Vocabulary.build(toks, min_freq=cfg.min_word_freq)
    ids = [vocab.encode(t)[: cfg.max_len or None] for t in toks]
    return pad_tokens(ids, pad_id=vocab.pad_id), list(vocab.itos), toks, _bow_from_tokens(ids, list(vocab.itos))


def load_data(cfg: GRUConfig) -> GRUData:
    """Load ``cfg.dataset`` through :mod:`xrec_core.data` and apply the paper's filters."""
    from ..data import dataset_files, load_citeulike, load_mter, load_reviews, resolve

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
        # which is all an order-insensitive model sees (eq. 5 is a mean over tokens).
        bow = d.bow[items].tocsr()
        itos = ["<PAD>"] + list(d.vocabulary)
        seqs = [np.repeat(bow.indices[bow.indptr[j]:bow.indptr[j + 1]] + 1,
                          bow.data[bow.indptr[j]:bow.indptr[j + 1]].astype(int)) for j in range(bow.shape[0])]
        tokens = pad_tokens([s.tolist() for s in seqs], pad_id=0)
        rng = np.random.default_rng(cfg.seed)
        sentences = [[itos[i] for i in rng.permutation(s)] for s in seqs]
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


def _rows(likes: sp.csr_matrix) -> list[np.ndarray]:
    return [likes.indices[likes.indptr[u]:likes.indptr[u + 1]] for u in range(likes.shape[0])]


def _from_rows(rows: list[np.ndarray], n_items: int) -> sp.csr_matrix:
    r = np.repeat(np.arange(len(rows)), [len(x) for x in rows])
    c = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    return _binary(r, c, (len(rows), n_items))


def make_folds(data: GRUData, cfg: GRUConfig) -> list[Fold]:
    """The first ``cfg.folds_run`` warm- and cold-start folds of the 5-fold protocol (Sec. 4.1)."""
    from ..data.splits import cold_start_folds, warm_start_folds

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


# --------------------------------------------------------------------------- models
def pretrained_embeddings(data: GRUData, cfg: GRUConfig) -> np.ndarray | None:
    """CBOW word vectors (gensim) trained on the items' text (Sec. 4.1.2 pre-trains on a larger corpus)."""
    if not cfg.cbow:
        return None
    window = cfg.cbow_window if data.ordered else 50  # bags of words: co-occurrence within the document
    return pretrain_cbow(data.sentences, data.itos, k=cfg.k, window=window, epochs=cfg.cbow_epochs, seed=cfg.seed)


def make_neural(name: str, cfg: GRUConfig, pretrained: np.ndarray | None, seed: int) -> TextRecommender:
    return TextRecommender(
        "gru" if name.startswith("GRU") else "embed", k=cfg.k, k_h1=cfg.k_h1,
        dropout=(cfg.dropout_emb, cfg.dropout_h1, cfg.dropout_h2), mtl=name.endswith("-MTL"), lam=cfg.lam,
        alpha=cfg.alpha, eps=cfg.eps, tag_neg_weight=cfg.tag_neg_weight, user_reg=cfg.user_reg,
        batch_users=cfg.batch_users, lr=cfg.lr, max_updates=cfg.max_updates, eval_every=cfg.eval_every,
        patience=cfg.patience, pretrained=pretrained, seed=seed, device=cfg.device, progress=False)


def _evaluate_topk(top: np.ndarray, fold: Fold) -> dict[str, Any]:
    if top.shape[1] < M_MAX:  # fewer candidates than M: Recall@M stays at Recall@|candidates|
        top = np.pad(top, ((0, 0), (0, M_MAX - top.shape[1])), constant_values=-1)
    curve = recall_curve(top, fold.test_relevant, list(range(1, M_MAX + 1)))
    per_user = recall_at_k(top, fold.test_relevant, 50)
    return {"recall_curve": [float(x) for x in curve], "recall50": float(np.nanmean(per_user)),
            "hr10": float(np.mean(reciprocal_hit_rank(top, fold.test_relevant, 10))), "n_users": int(len(fold.test_users))}


def tag_recall(scores: np.ndarray, tags: sp.csr_matrix, items: np.ndarray, k: int = 50) -> float:
    """Mean per-article Recall@k of the tags ranked by ``scores`` ``(len(items), n_tags)``; articles without tags skipped."""
    rel = [tags.indices[tags.indptr[j]:tags.indptr[j + 1]] for j in items]
    keep = [i for i, r in enumerate(rel) if len(r)]
    if not keep:
        return float("nan")
    s = scores[keep]
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return float(np.nanmean(recall_at_k(top, [rel[i] for i in keep], k)))


def run_neural(name: str, fold: Fold, data: GRUData, cfg: GRUConfig, pretrained: np.ndarray | None) -> dict[str, Any]:
    """Train one GRU/Embed model on a fold and evaluate it (one resumable unit)."""
    t0 = time.perf_counter()
    model = make_neural(name, cfg, pretrained, cfg.seed + fold.index)
    tag_items = fold.known if fold.scenario == "cold" else np.ones(data.n_items, bool)
    model.fit(fold.train, data.tokens, vocab_size=len(data.itos), known=fold.known,
              tags=data.tags if model.mtl else None, tag_items=tag_items, valid=fold.valid)
    fit_s = time.perf_counter() - t0
    excl = fold.exclude[fold.test_users] if fold.exclude is not None else None
    top = model.topk(fold.test_users, M_MAX, candidates=fold.candidates, exclude=excl)
    out = _evaluate_topk(top, fold)
    out.update(fit_s=fit_s, updates=model.n_updates, best_valid=model.best_valid_recall, history=model.history)
    if model.mtl and fold.scenario == "cold":
        out["tag_recall50"] = tag_recall(model.tag_scores(fold.candidates), data.tags, fold.candidates)
    if fold.index == 0 and fold.scenario == "warm" and cfg.n_saliency:
        out["saliency"] = saliency_examples(model, fold, data, top, cfg.n_saliency)
    return out


def saliency_examples(model: TextRecommender, fold: Fold, data: GRUData, top: np.ndarray, n: int) -> list[dict[str, Any]]:
    """Figure 2: for ``n`` users, the saliency ``||d r_ij / d e_jt||`` of each word of their top-1 item."""
    rng = np.random.default_rng(0)
    picks = rng.choice(len(fold.test_users), size=min(n, len(fold.test_users)), replace=False)
    rows = []
    for p in sorted(picks):
        user, item = int(fold.test_users[p]), int(top[p, 0])
        tok = data.tokens[item]
        tok = tok[tok != 0]
        sal = model.saliency(user, item)
        rows.append({"user": user, "item": item, "words": [data.itos[t] for t in tok],
                     "saliency": [float(s) for s in sal], "liked": bool(item in set(fold.test_relevant[p].tolist()))})
    return rows


def _ctr_class():
    from ..models.ctr import CTR

    return CTR


_THETA_CACHE: dict[tuple, np.ndarray] = {}


def lda_theta(data: GRUData, cfg: GRUConfig) -> np.ndarray:
    """CTR's initial topic proportions: one LDA fit on the items' text only (Sec. 4.1.2), shared by all units."""
    from ..models.ctr import lda_topics

    key = (data.name, data.bow.shape, data.bow.nnz, cfg.ctr_k, cfg.ctr_lda_iter, cfg.seed)
    if key not in _THETA_CACHE:
        _THETA_CACHE[key] = lda_topics(data.bow, cfg.ctr_k, cfg.ctr_lda_iter, cfg.seed)
    return _THETA_CACHE[key]


def run_ctr(name: str, fold: Fold, data: GRUData, cfg: GRUConfig) -> dict[str, Any]:
    """Fit CTR or CTR-MTL (``xrec_core.models.ctr``, Wang & Blei 2011 with LDA-initialised topics) on a fold."""
    CTR = _ctr_class()
    t0 = time.perf_counter()
    kwargs = dict(k=cfg.ctr_k, lambda_u=cfg.ctr_lambda_u, lambda_v=cfg.ctr_lambda_v, a=cfg.ctr_a, b=cfg.ctr_b,
                  max_iter=cfg.ctr_max_iter, lda_iter=cfg.ctr_lda_iter, seed=cfg.seed + fold.index,
                  theta=lda_theta(data, cfg))
    if name == "CTR-MTL":
        tag_items = fold.known if fold.scenario == "cold" else np.ones(data.n_items, bool)
        kwargs.update(tags=sp.diags(tag_items.astype(float)) @ data.tags, tag_weight=cfg.lam)
    model = CTR(**kwargs).fit(fold.train, data.bow)
    fit_s = time.perf_counter() - t0
    cold_items = np.flatnonzero(~fold.known)
    V = model.item_vectors(cold_items=cold_items)
    U = model.user_vectors() if hasattr(model, "user_vectors") else model.U
    excl = fold.exclude[fold.test_users] if fold.exclude is not None else None
    top = topk_from_factors(np.asarray(U)[fold.test_users], np.asarray(V), np.zeros(data.n_items), M_MAX,
                            candidates=fold.candidates, exclude=excl)
    out = _evaluate_topk(top, fold)
    out.update(fit_s=fit_s)
    if name == "CTR-MTL" and fold.scenario == "cold":
        out["tag_recall50"] = tag_recall(np.asarray(model.score_tags(fold.candidates, cold_items=cold_items)),
                                         data.tags, fold.candidates)
    return out


def run_baseline(name: str, fold: Fold, data: GRUData, cfg: GRUConfig) -> dict[str, Any]:
    """MostPop and BPR tuned on the fold's validation likes (issue 9), warm start only."""
    from ..models.ranking_baselines import MostPop, tune_bpr

    t0 = time.perf_counter()
    info: dict[str, Any] = {}
    if name == "MostPop":
        model = MostPop().fit(fold.train)
    else:
        valid_rel = [np.zeros(0, np.int64)] * data.n_users
        for u, r in zip(fold.valid.users, fold.valid.relevant):
            valid_rel[u] = r
        grid = {"k": [cfg.k], "lr": [0.05], "reg": [1e-4, 1e-2], "epochs": [cfg.bpr_epochs]}
        tuned = tune_bpr(fold.train, valid_rel, grid, k_eval=50, seed=cfg.seed)
        model, info = tuned.model, {"params": tuned.params}
    tops = []
    for s in range(0, len(fold.test_users), 1024):
        users = fold.test_users[s:s + 1024]
        scores = np.asarray(model.score(users), dtype=np.float64)  # (b, n_items)
        excl = fold.exclude[users].tocoo()
        scores[excl.row, excl.col] = -np.inf
        tops.append(np.argsort(-scores, axis=1, kind="stable")[:, :M_MAX])
    out = _evaluate_topk(np.concatenate(tops), fold)
    out.update(fit_s=time.perf_counter() - t0, **info)
    return out


def units_dir(cfg: GRUConfig) -> Path:
    """Finished units: ``results/gru/units/<scale>__<dataset>`` (the seed is part of each unit's fingerprint)."""
    from ..paths import units_root

    return units_root(cfg.results_dir or None, "gru", cfg.scale, cfg.dataset)


def figures_dir(cfg: GRUConfig) -> Path:
    """Where the chapter's PNG figures go (``<results>/gru/figures/<scale>__<dataset>``, beside the record)."""
    from ..paths import results_root

    path = results_root(cfg.results_dir or None) / "gru" / "figures" / f"{cfg.scale}__{cfg.dataset}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def unit_fingerprint(cfg: GRUConfig) -> dict[str, Any]:
    """The settings a unit's result depends on: not the model list or the number of folds run (a rerun
    with more models or folds reuses finished units) nor how many threads ran (:class:`UnitStore` itself
    leaves out where data and results live)."""
    skip = ("models", "baselines", "folds_run", "n_threads", "device")
    return {k: v for k, v in cfg.as_dict().items() if k not in skip}


def run_protocol(cfg: GRUConfig, data: GRUData, folds: list[Fold], store: UnitStore | None = None,
                 progress: bool = True) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Run every (scenario, fold, model) unit, resumably: ``{scenario: {model: [per-fold results]}}``."""
    from ..progress import tqdm

    store = store or UnitStore(units_dir(cfg), unit_fingerprint(cfg))
    models = testable_models(cfg, data)
    cache: dict[str, np.ndarray | None] = {}

    def pretrained() -> np.ndarray | None:  # CBOW only when a neural unit still has to train
        if "w" not in cache:
            cache["w"] = pretrained_embeddings(data, cfg)
        return cache["w"]

    units = [(f, m) for f in folds for m in models]
    if cfg.baselines:
        units += [(f, b) for f in folds if f.scenario == "warm" for b in BASELINES]
    results: dict[str, dict[str, list[dict[str, Any]]]] = {s: {} for s in SCENARIOS}
    for fold, name in tqdm(units, desc=f"gru {cfg.dataset}", disable=not progress):
        key = f"{fold.scenario}/fold{fold.index}/{name}"
        if name in NEURAL:
            compute = lambda f=fold, n=name: run_neural(n, f, data, cfg, pretrained())  # noqa: E731
        elif name in CTR_MODELS:
            compute = lambda f=fold, n=name: run_ctr(n, f, data, cfg)  # noqa: E731
        else:
            compute = lambda f=fold, n=name: run_baseline(n, f, data, cfg)  # noqa: E731
        res = store.run(key, compute)
        log.info("%s: Recall@50 %.4f HR@10 %.4f", key, res["recall50"], res["hr10"])
        results[fold.scenario].setdefault(name, []).append(res)
    return results


# --------------------------------------------------------------------------- tables, curves, claims
def table1(results: dict[str, dict[str, list[dict[str, Any]]]], cfg: GRUConfig) -> pd.DataFrame:
    """Table 1 for our data: % Recall@50 warm / cold / tag prediction, mean ± std over folds."""
    rows = []
    for model in list(MODELS) + list(BASELINES):
        row: dict[str, Any] = {"model": model}
        for s in SCENARIOS:
            vals = [100 * r["recall50"] for r in results[s].get(model, [])]
            row[METRIC[s]] = ("—" if not vals else f"{np.mean(vals):.2f} ± {np.std(vals, ddof=1):.2f}" if len(vals) > 1
                              else f"{vals[0]:.2f} (1 fold)")
        tv = [100 * r["tag_recall50"] for r in results["cold"].get(model, []) if "tag_recall50" in r]
        row[TAG_METRIC] = f"{np.mean(tv):.2f}" if tv else "—"
        hv = [r["hr10"] for r in results["warm"].get(model, [])]
        row[HR_METRIC] = f"{np.mean(hv):.4f}" if hv else "—"
        rows.append(row)
    return pd.DataFrame(rows)


def metric_rows(results: dict[str, dict[str, list[dict[str, Any]]]], cfg: GRUConfig) -> list[MetricRow]:
    rows = []
    for s in SCENARIOS:
        for model, res in results[s].items():
            cmp = cfg.paper_dataset if model in MODELS else None
            rows.append(MetricRow.from_values("Table 1", cfg.dataset, model, METRIC[s], [100 * r["recall50"] for r in res],
                                              compare_to=cmp, higher_is_better=True))
            if s == "warm":
                rows.append(MetricRow.from_values("Sec. 4.2", cfg.dataset, model, HR_METRIC, [r["hr10"] for r in res],
                                                  compare_to=cmp, higher_is_better=True))
            tv = [100 * r["tag_recall50"] for r in res if "tag_recall50" in r]
            if tv:
                rows.append(MetricRow.from_values("Table 1", cfg.dataset, model, TAG_METRIC, tv, compare_to=cmp,
                                                  higher_is_better=True))
    return rows


def figure3_curves(results: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, dict[str, Any]]:
    """Recall@M, M = 1..100, averaged over folds, per scenario and model (Figure 3 shows the MTL models)."""
    curves = {}
    for s in SCENARIOS:
        for model, res in results[s].items():
            y = np.mean([r["recall_curve"] for r in res], axis=0)
            curves[f"fig3_{s}/{model}"] = {"x": list(range(1, M_MAX + 1)), "y": [float(v) for v in y],
                                           "label": model, "scenario": s}
    return curves


def _mean(results, s, model, key="recall50") -> float | None:
    vals = [r[key] for r in results[s].get(model, []) if key in r]
    return float(np.mean(vals)) if vals else None


def _fold_values(results, s, model, key="recall50") -> list[float] | None:
    """A model's per-fold values of ``key`` in one scenario (fold order), or None when it did not run."""
    vals = [float(r[key]) for r in results[s].get(model, []) if key in r]
    return vals or None


def paper_claims(results: dict[str, dict[str, list[dict[str, Any]]]], cfg: GRUConfig) -> list[Claim]:
    """The qualitative claims of Sec. 4.2, checked on our folds (``holds=None`` when not testable).

    "A beats B" holds when A's mean is higher and a paired t-test over the folds gives p < 0.05
    (:func:`higher_across_folds`); a claim against several models must hold against each.
    """
    claims = []

    def add(text: str, source: str, winner: tuple[str, str, str], losers: list[tuple[str, str, str]],
            lower_wins: bool = False) -> None:
        """``winner`` beats every one of ``losers``; each is (scenario, model, key)."""
        a = _fold_values(results, *winner)
        bs = [_fold_values(results, *loser) for loser in losers]
        if a is None or any(b is None for b in bs):
            claims.append(Claim(text, source, None, "not testable here: a model is missing on this data", cfg.dataset))
            return
        verdicts = [higher_across_folds(b, a) if lower_wins else higher_across_folds(a, b) for b in bs]
        evidence = "; ".join(f"{winner[1]} {np.mean(a):.4f} vs {loser[1]} {np.mean(b):.4f} ({why})"
                             for loser, b, (_, why) in zip(losers, bs, verdicts))
        claims.append(Claim(text, source, all(ok for ok, _ in verdicts), evidence, cfg.dataset))

    for s, src in (("cold", "Sec. 4.2 Cold-Start"), ("warm", "Sec. 4.2 Warm-Start")):
        add(f"{s}: GRU beats the best of CTR and Embed (Recall@50)", src, (s, "GRU", "recall50"),
            [(s, "CTR", "recall50"), (s, "Embed", "recall50")])
        for base in ("GRU", "CTR", "Embed"):
            add(f"{s}: multi-task learning improves {base} (Recall@50)", src, (s, f"{base}-MTL", "recall50"),
                [(s, base, "recall50")])
    add("GRU-MTL has a higher HR@10 than CTR-MTL", "Sec. 4.2", ("warm", "GRU-MTL", "hr10"), [("warm", "CTR-MTL", "hr10")])
    add("tag prediction: CTR-MTL is worse than GRU-MTL and Embed-MTL (Recall@50)", "Sec. 4.2 Tag Prediction",
        ("cold", "CTR-MTL", "tag_recall50"), [("cold", "GRU-MTL", "tag_recall50"), ("cold", "Embed-MTL", "tag_recall50")],
        lower_wins=True)
    best = max((m for m in MODELS if _mean(results, "warm", m) is not None), key=lambda m: _mean(results, "warm", m), default=None)
    add("warm start: the best of the paper's models beats a tuned BPR (issue 9)", "issue 9",
        ("warm", best or "GRU", "recall50"), [("warm", "BPR (tuned)", "recall50")])
    return claims


def record_results(recorder: RunRecorder, cfg: GRUConfig, data: GRUData,
                   results: dict[str, dict[str, list[dict[str, Any]]]]) -> None:
    """Metric rows, Figure 3 curves, claims, saliency examples and notes into the run record."""
    recorder.add_metrics(metric_rows(results, cfg))
    for name, curve in figure3_curves(results).items():
        recorder.add_curve(name, curve)
    for c in paper_claims(results, cfg):
        recorder.add_claim(c)
    recorder.add_table("data", data_statistics(data).to_dict("records"))
    sal = saliency_table(results)
    if sal:
        recorder.add_table("saliency", sal)
    units = []
    for s in SCENARIOS:
        for model, res in results[s].items():
            for f, r in enumerate(res):
                units.append({"scenario": s, "fold": f, "model": model, "recall50": r["recall50"], "hr10": r["hr10"],
                              "tag_recall50": r.get("tag_recall50"), "fit_s": r.get("fit_s"), "updates": r.get("updates"),
                              "n_users": r["n_users"]})
    recorder.add_table("units", units)
    skipped = sorted(set(cfg.model_list) - set(testable_models(cfg, data)))
    if skipped:
        recorder.note(f"{', '.join(skipped)}: not testable here ({data.name} has no ordered item text).")
    recorder.note(f"Ran folds 1..{cfg.folds_run} of the {cfg.n_folds}-fold warm- and cold-start splits.")


def saliency_table(results: dict[str, dict[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """The saliency examples of the order-sensitive MTL model if present (else the best available)."""
    for model in ("GRU-MTL", "GRU", "Embed-MTL", "Embed"):
        res = results["warm"].get(model)
        if res and res[0].get("saliency"):
            return [{"model": model, **row} for row in res[0]["saliency"]]
    return []


# --------------------------------------------------------------------------- figures
def plot_figure3(curves: dict[str, dict[str, Any]], path: Path | None = None, models: tuple[str, ...] = ("GRU-MTL", "CTR-MTL", "Embed-MTL")):
    """Figure 3: Recall@M for the MTL models, warm and cold start side by side."""
    import matplotlib.pyplot as plt

    from ..plots import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=False)
    for ax, s in zip(axes, SCENARIOS):
        for model in models:
            c = curves.get(f"fig3_{s}/{model}")
            if c:
                ax.plot(c["x"], c["y"], label=model)
        ax.set_title(f"{s} start")
        ax.set_xlabel("M")
        ax.set_ylabel("Recall@M")
        ax.legend(frameon=False)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def saliency_html(words: list[str], saliency: list[float]) -> str:
    """Figure 2 as HTML: each word's background is darker (and its font larger) the higher its saliency."""
    import html

    s = np.asarray(saliency, dtype=float)
    w = s / s.max() if s.size and s.max() > 0 else np.zeros_like(s)
    spans = [f'<span style="background: rgba(220,40,40,{0.08 + 0.85 * x:.2f}); font-size: {90 + 50 * x:.0f}%; '
             f'padding: 1px 2px; margin: 1px; border-radius: 3px">{html.escape(word)}</span>' for word, x in zip(words, w)]
    return '<div style="line-height: 2.0">' + " ".join(spans) + "</div>"


def plot_saliency(row: dict[str, Any], path: Path | None = None):
    """Static Figure 2: the words of one item coloured by saliency (matplotlib, saved as PNG)."""
    import matplotlib.pyplot as plt

    from ..plots import save_figure

    words, s = row["words"], np.asarray(row["saliency"], dtype=float)
    w = s / s.max() if s.size and s.max() > 0 else np.zeros_like(s)
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.35 * (len(words) // 12)))
    ax.set_axis_off()
    x, y = 0.0, 1.0
    renderer = fig.canvas.get_renderer()
    for word, v in zip(words, w):
        t = ax.text(x, y, word, fontsize=10 + 6 * v, color=plt.cm.Reds(0.3 + 0.7 * v), transform=ax.transAxes, va="top")
        bb = t.get_window_extent(renderer=renderer).transformed(ax.transAxes.inverted())
        x += bb.width + 0.012
        if x > 0.92:
            x, y = 0.0, y - 0.3
    ax.set_title(f"{row.get('model', '')} saliency ||d r_ij / d e_jt||, user {row['user']}, item {row['item']}", fontsize=9)
    if path is not None:
        save_figure(fig, path)
    return fig


# --------------------------------------------------------------------------- notebook helpers
def make_config(scale: str, *, max_items: int = -1, models: str = "", folds_run: int = 0, **params: Any) -> GRUConfig:
    """Build the chapter config; ``max_items``/``models``/``folds_run`` left at -1/""/0 keep the scale's defaults."""
    extra: dict[str, Any] = {}
    if max_items >= 0:
        extra["max_items"] = max_items
    if folds_run > 0:
        extra["folds_run"] = folds_run
    if models:
        extra["models"] = models
    return GRUConfig.from_scale(scale, **params, **extra)


def model_summary(cfg: GRUConfig, data: GRUData) -> pd.DataFrame:
    """The models this run trains, their encoder and trainable-parameter count (CTR: latent factors)."""
    rows = []
    for name in cfg.model_list:
        testable = data.ordered or name not in ORDER_SENSITIVE
        if name in NEURAL:
            from ..models.gru import TextRecNet, build_encoder

            enc = build_encoder("gru" if name.startswith("GRU") else "embed", len(data.itos), k=cfg.k, k_h1=cfg.k_h1)
            net = TextRecNet(enc, data.n_users, data.n_items, np.ones(data.n_items, bool),
                             n_tags=len(data.tag_names) if name.endswith("-MTL") else 0)
            n_params = sum(p.numel() for p in net.parameters())
            kind = "BiGRU + GRU, mean pooling (Sec. 3.2)" if name.startswith("GRU") else "mean of word embeddings (eq. 5)"
        else:
            n_params = cfg.ctr_k * (data.n_users + data.n_items + (len(data.tag_names) if name == "CTR-MTL" else 0))
            kind = "LDA topics + ALS (Wang & Blei 2011)"
        rows.append({"model": name, "item text encoder": kind, "parameters": n_params, "MTL (tags)": name.endswith("-MTL"),
                     "runs here": "yes" if testable else "not testable here (no word order)"})
    return pd.DataFrame(rows)


def claims_frame(claims: list[Claim] | list[dict[str, Any]]) -> pd.DataFrame:
    """Claims as a table (``holds`` None -> "not testable here")."""
    import dataclasses as _dc

    rows = [_dc.asdict(c) if not isinstance(c, dict) else c for c in claims]
    df = pd.DataFrame(rows, columns=["claim", "source", "holds", "evidence", "dataset"])
    df["holds"] = df["holds"].map({True: "yes", False: "no"}).fillna("not testable here")
    return df


def show_saliency(rows: list[dict[str, Any]]) -> None:
    """Figure 2 view: an ipywidgets picker over the recommended items (when available) plus a static rendering."""
    from IPython.display import HTML, display

    if not rows:
        display(HTML("<i>no saliency examples in this record</i>"))
        return

    def render(i: int) -> HTML:
        r = rows[i]
        head = (f"<b>{r.get('model', '')}</b>: user {r['user']}, recommended item {r['item']} "
                f"({'a held-out like' if r.get('liked') else 'not among the held-out likes'})")
        return HTML(head + saliency_html(r["words"], r["saliency"]))

    for i in range(min(3, len(rows))):  # static rendering (the book shows these)
        display(render(i))
    try:
        import ipywidgets as widgets
    except ImportError:
        return
    options = [(f"item {r['item']} for user {r['user']}: {' '.join(r['words'][:8])}...", i) for i, r in enumerate(rows)]
    widgets.interact(lambda example: display(render(example)), example=widgets.Dropdown(options=options, description="item"))


def baseline_summary(metrics: list[Any]) -> str:
    """One sentence per scenario naming the paper's models that lose to the best simple baseline (issue 9)."""
    import dataclasses as _dc

    rows = [_dc.asdict(m) if not isinstance(m, dict) else m for m in metrics]
    out = []
    for metric in (METRIC["warm"], HR_METRIC):
        vals = {r["model"]: r["value"] for r in rows if r["metric"] == metric}
        base = {m: v for m, v in vals.items() if m in BASELINES}
        if not base:
            continue
        bname, bval = max(base.items(), key=lambda kv: kv[1])
        losers = [m for m in MODELS if m in vals and vals[m] < bval]
        winners = [m for m in MODELS if m in vals and vals[m] >= bval]
        fmt = "{:.2f}" if "(%)" in metric else "{:.4f}"
        text = f"**{metric}**: the best simple baseline is {bname} ({fmt.format(bval)}); "
        text += (f"{', '.join(f'{m} ({fmt.format(vals[m])})' for m in losers)} {'loses' if len(losers) == 1 else 'lose'} to it" if losers
                 else "none of the paper's models loses to it")
        if winners and losers:
            text += f", while {', '.join(winners)} {'beats' if len(winners) == 1 else 'beat'} it"
        out.append(text + ".")
    out.append("In cold start the simple baselines cannot rank items nobody has liked, which is the point of text-based models.")
    return "\n\n".join(out)
