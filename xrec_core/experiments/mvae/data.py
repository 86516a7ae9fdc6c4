"""Explanation datasets for the MVAE chapter: (user, item, rating, explanation sentence, feature).

The paper (Sec. 4.1) uses the PETER/NETE datasets (Yelp, Amazon Movies & TV, TripAdvisor),
built with the Sentires toolkit: feature words and opinion words are extracted from reviews and
a sentence of the review that mentions a feature is kept as the ground-truth explanation. Those
files are not present here, so :func:`build_explanations` rebuilds such a set from real
reviews (Amazon Musical Instruments, All_Beauty, Gift_Cards) with the same recipe:

1. Split every review into sentences (``.``, ``!``, ``?``, ``;``, new lines) and tokenise them
   (:func:`explanation_tokens`: lower case, words with inner apostrophes, numbers, punctuation).
2. **Opinion words** come from a fixed lexicon of common evaluative adjectives
   (:data:`OPINION_WORDS`); Sentires learns its opinion lexicon, we cannot, so this list is a
   hand-written stand-in.
3. **Feature words** are learnt from the corpus: a token is a candidate when it appears within
   ``window`` tokens of an opinion word, is not a stop word (scikit-learn's English list) nor an
   opinion word, and behaves like a noun -- at least ``min_noun_ratio`` of its occurrences follow
   a determiner or possessive (``the``, ``a``, ``this``, ``my`` ...), a cheap replacement for a
   POS tagger. The ``n_features`` most frequent candidates seen at least ``min_feature_count``
   times form the feature vocabulary.
4. For each review the first sentence of 4 to ``max_words`` tokens that mentions a feature and
   an opinion word becomes the explanation, with that feature; reviews without one are dropped.
5. Optional **sparse filter** (``sparse_max_reviews``, the paper's Sec. 4.1): keep only samples
   whose user or item has fewer than that many reviews (15 for Yelp/TripAdvisor, 20 for Amazon).

Ratings >= 3 are positive sentiment (Sec. 4.4). :func:`split_rows` gives the PETER index splits
when the data has them, else PETER-style random 8:1:1 splits
(:func:`xrec_core.data.splits.random_split`) in which every user and item of the validation and
test parts also occurs in training. :class:`Vocab` and :func:`encode_part` turn a part into the
tensors the generators read (:class:`EncodedSplit`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from ...data.splits import random_split
from ...models.explain.common import ExplanationBatch, TextSpec

if TYPE_CHECKING:
    from .config import MVAEConfig

#: evaluative adjectives used as opinion words (hand-written stand-in for Sentires' lexicon).
OPINION_WORDS = frozenset("""
good great excellent nice awesome amazing fantastic perfect wonderful superb outstanding solid decent fine
bad poor terrible awful horrible cheap flimsy weak noisy loud quiet clear clean crisp warm bright rich
sturdy durable strong reliable comfortable easy simple hard difficult smooth soft tight loose heavy light
small big large tiny huge long short thin thick beautiful pretty ugly lovely cute gorgeous useful useless
handy convenient expensive affordable inexpensive reasonable worth happy pleased satisfied disappointed
impressive impressed accurate precise stable responsive sensitive fast slow quick sharp dull fresh
favorite fun best worst better worse professional sweet mild gentle harsh greasy sticky dry smooth
helpful friendly functional versatile excellent sleek fragile broken defective original authentic
""".split())

_DETERMINERS = frozenset("the a an this that these those my its their his her our your".split())
_EXTRA_STOP = frozenset("""really just also well bit lot lots quite pretty little much way thing things product products
item items stuff one ones get got use used using make makes made buy bought love like works work worked
don't doesn't didn't it's i'm i've can't won't isn't wasn't""".split())
_SENTENCE_SPLIT = re.compile(r"[.!?;\n]+")
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+(?:\.\d+)?|[^\sa-z\d]")


def explanation_tokens(text: str) -> list[str]:
    """Lower-cased word, number and punctuation tokens of one sentence."""
    return _TOKEN.findall(text.lower())


def split_sentences(text: str) -> list[str]:
    """Review text -> non-empty sentences."""
    return [s.strip() for s in _SENTENCE_SPLIT.split(text or "") if s.strip()]


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | _EXTRA_STOP


def extract_features(sentences: Iterable[Sequence[str]], *, window: int = 3, min_noun_ratio: float = 0.1,
                     min_feature_count: int = 10, n_features: int = 500) -> list[str]:
    """Feature vocabulary: frequent noun-like tokens near opinion words (steps 3 of the module doc).

    Returns the features ordered by decreasing co-occurrence count.
    """
    stop = _stop_words()
    near = Counter()
    total = Counter()
    after_det = Counter()
    for toks in sentences:
        for k, tok in enumerate(toks):
            total[tok] += 1
            if k and toks[k - 1] in _DETERMINERS:
                after_det[tok] += 1
        op_pos = [k for k, t in enumerate(toks) if t in OPINION_WORDS]
        if not op_pos:
            continue
        cands = set()
        for p in op_pos:
            for k in range(max(0, p - window), min(len(toks), p + window + 1)):
                t = toks[k]
                if t.isalpha() and len(t) > 2 and t not in stop and t not in OPINION_WORDS:
                    cands.add(t)
        near.update(cands)
    feats = [(c, t) for t, c in near.items()
             if c >= min_feature_count and after_det[t] >= min_noun_ratio * total[t]]
    feats.sort(key=lambda ct: (-ct[0], ct[1]))
    return [t for _, t in feats[:n_features]]


@dataclass
class ExplanationData:
    """An explanation dataset: one row per (user, item) review with its explanation."""

    df: pd.DataFrame          # user_idx, item_idx, user, item, rating, sentiment, explanation, tokens, feature
    features: list[str]       # the feature vocabulary
    n_users: int
    n_items: int
    source: str               # "built from reviews" or "PETER/NETE files"
    fixed_splits: list[dict[str, np.ndarray]] | None = None  # the PETER index splits, when given

    def __len__(self) -> int:
        return len(self.df)


def build_explanations(reviews: pd.DataFrame, *, max_words: int = 20, sparse_max_reviews: int = 0,
                       window: int = 3, min_noun_ratio: float = 0.1, min_feature_count: int = 10,
                       n_features: int = 500) -> ExplanationData:
    """Build (user, item, rating, explanation, feature) samples from raw reviews (see module doc).

    Parameters
    ----------
    reviews : DataFrame
        ``load_reviews`` output (columns ``user``, ``item``, ``rating``, ``text``).
    max_words : int
        Longest explanation kept (tokens); the paper generates up to 20 tokens.
    sparse_max_reviews : int
        0 keeps every sample; N > 0 keeps samples whose user or item has fewer than N reviews.
    """
    missing = {"user", "item", "rating", "text"} - set(reviews.columns)
    if missing:
        raise ValueError(f"reviews lack column(s) {sorted(missing)}; expected load_reviews() output")
    if reviews.empty:
        raise ValueError("no reviews to build explanations from")
    sents = [[explanation_tokens(s) for s in split_sentences(t)] for t in reviews["text"].astype(str)]
    features = extract_features((s for doc in sents for s in doc), window=window, min_noun_ratio=min_noun_ratio,
                                min_feature_count=min_feature_count, n_features=n_features)
    if not features:
        raise ValueError("no feature words found; lower min_feature_count or give more reviews")
    fset = set(features)
    rows = []
    for (user, item, rating), doc in zip(reviews[["user", "item", "rating"]].itertuples(index=False), sents):
        for toks in doc:
            if not 4 <= len(toks) <= max_words or not any(t in OPINION_WORDS for t in toks):
                continue
            feat = next((t for t in toks if t in fset), None)
            if feat is not None:
                rows.append((user, item, float(rating), " ".join(toks), toks, feat))
                break
    df = pd.DataFrame(rows, columns=["user", "item", "rating", "explanation", "tokens", "feature"])
    if sparse_max_reviews:
        u_cnt = reviews["user"].value_counts()
        i_cnt = reviews["item"].value_counts()
        keep = (df["user"].map(u_cnt) < sparse_max_reviews) | (df["item"].map(i_cnt) < sparse_max_reviews)
        df = df[keep.to_numpy()]
    return _finalise(df, features, "built from reviews")


def _finalise(df: pd.DataFrame, features: list[str], source: str) -> ExplanationData:
    if df.empty:
        raise ValueError("no explanation sample left after filtering")
    df = df.reset_index(drop=True).copy()
    users = {u: k for k, u in enumerate(pd.unique(df["user"]))}
    items = {i: k for k, i in enumerate(pd.unique(df["item"]))}
    df.insert(0, "user_idx", df["user"].map(users).astype(np.int64))
    df.insert(1, "item_idx", df["item"].map(items).astype(np.int64))
    df["sentiment"] = (df["rating"] >= 3).astype(np.int64)  # Sec. 4.4
    return ExplanationData(df=df, features=features, n_users=len(users), n_items=len(items), source=source)


def from_peter(records: Sequence[dict] | pd.DataFrame, max_words: int = 20,
               splits: Sequence[dict[str, Sequence[int]]] | None = None, sparse_max_reviews: int = 0) -> ExplanationData:
    """Wrap the PETER/NETE reviews: raw ``reviews.pickle`` records (``user``, ``item``, ``rating``,
    ``template``) or ``load_peter``'s frame (``user``, ``item``, ``rating``, ``text``, ``feature``).

    ``template`` is Sentires' ``(feature, adjective, sentence, score)`` quadruple; its sentence is
    the explanation and its feature the feature, exactly as in PETER's data loader. ``splits`` are
    PETER's ``train``/``validation``/``test`` row indices (one dict per split), used instead of
    :func:`random_split` so that the run uses exactly the paper's splits. No sample is dropped, so
    the indices keep pointing at the same rows. ``sparse_max_reviews`` > 0 applies the paper's
    filter (keep samples whose user or item has fewer reviews than that) and re-maps the split
    indices to the rows kept.
    """
    df = pd.DataFrame(records)
    if "template" in df.columns:
        df["feature"] = df["template"].map(lambda t: t[0])
        df["explanation"] = df["template"].map(lambda t: t[2])
    elif "text" in df.columns and "explanation" not in df.columns:
        df["explanation"] = df["text"]
    missing = {"user", "item", "rating", "explanation", "feature"} - set(df.columns)
    if missing:
        raise ValueError(f"PETER records lack {sorted(missing)}")
    df["tokens"] = df["explanation"].map(lambda s: explanation_tokens(s)[:max_words])
    df["explanation"] = df["tokens"].map(" ".join)
    df = df[["user", "item", "rating", "explanation", "tokens", "feature"]].reset_index(drop=True)
    new_index = np.arange(len(df))
    if sparse_max_reviews:
        keep = ((df["user"].map(df["user"].value_counts()) < sparse_max_reviews)
                | (df["item"].map(df["item"].value_counts()) < sparse_max_reviews)).to_numpy()
        new_index = np.where(keep, np.cumsum(keep) - 1, -1)
        df = df[keep]
    data = _finalise(df, sorted(set(df["feature"])), "PETER/NETE files")
    if splits:
        def remap(rows: Sequence[int]) -> np.ndarray:
            mapped = new_index[np.asarray(rows, dtype=np.int64)]
            return mapped[mapped >= 0]

        data.fixed_splits = [{"train": remap(s["train"]), "valid": remap(s["validation"]), "test": remap(s["test"])}
                             for s in splits]
    return data


def explanation_stats(data: ExplanationData) -> pd.DataFrame:
    """Table 1 of the paper for our data: users, items, samples, per-user/item means, words per explanation,
    and how many explanations repeat another's text word for word.

    The last two rows matter for reading the generators' scores: an explanation whose text another
    sample has too (often the same user's, written for a variant of the same product) can be
    reproduced by a model that learns a user's habitual sentence, and retrieved by the baselines.
    """
    df = data.df
    texts = pd.DataFrame({"user": df["user_idx"].to_numpy(), "text": df["tokens"].map(" ".join).to_numpy()})
    repeated = texts.duplicated("text", keep=False)
    repeated_by_user = texts.duplicated(["user", "text"], keep=False)
    return pd.DataFrame({
        "statistic": ["# of users", "# of items", "# of reviews", "Avg. # of reviews/user", "Avg. # of reviews/item",
                      "Avg. # of words/explanation", "# of features", "Share repeating any sample's text",
                      "Share repeating the same user's text"],
        "value": [data.n_users, data.n_items, len(df), len(df) / data.n_users, len(df) / data.n_items,
                  float(df["tokens"].map(len).mean()), len(data.features), float(repeated.mean()),
                  float(repeated_by_user.mean())],
    })


# ============================================================================ loading
def load_explanations(cfg: "MVAEConfig") -> tuple[ExplanationData, list[Path]]:
    """The explanation dataset of ``cfg.dataset`` and the files it was read from."""
    from ... import data as xdata
    from .config import PETER_SPARSE

    data_dir = cfg.data_dir or None
    if cfg.dataset.startswith("peter-"):
        loaded = [xdata.load_peter(cfg.dataset, data_dir=data_dir, split=k + 1) for k in range(cfg.n_splits)]
        sparse = PETER_SPARSE[cfg.dataset] if cfg.sparse_max_reviews else 0
        exp = from_peter(loaded[0][0], max_words=cfg.max_words, splits=[index for _, index in loaded], sparse_max_reviews=sparse)
    else:
        reviews = xdata.load_reviews(cfg.dataset, data_dir=data_dir)
        exp = build_explanations(reviews, max_words=cfg.max_words, sparse_max_reviews=cfg.sparse_max_reviews,
                                 min_feature_count=cfg.min_feature_count, n_features=cfg.n_features)
    if cfg.max_samples and len(exp) > cfg.max_samples:
        # the samples of the most active items (then users), so that a small subset still splits
        item_n = exp.df["item_idx"].map(exp.df["item_idx"].value_counts())
        user_n = exp.df["user_idx"].map(exp.df["user_idx"].value_counts())
        order = np.lexsort((np.arange(len(exp)), -user_n.to_numpy(), -item_n.to_numpy()))
        exp = from_rows(exp, np.sort(order[: cfg.max_samples]))
    return exp, list(xdata.dataset_files(cfg.dataset, data_dir=data_dir))


def from_rows(exp: ExplanationData, rows: np.ndarray) -> ExplanationData:
    """A subset of samples with users/items re-indexed."""
    df = exp.df.iloc[rows][["user", "item", "rating", "explanation", "tokens", "feature"]]
    return _finalise(df, exp.features, exp.source)


def split_rows(exp: ExplanationData, split: int, seed: int) -> dict[str, np.ndarray]:
    """Row indices ``{"train", "valid", "test"}`` of split ``split``: PETER's index files when the
    data came with them, else a random 8:1:1 split seeded by ``seed + split``."""
    if exp.fixed_splits:
        return exp.fixed_splits[split]
    return random_split(exp.df["user_idx"].to_numpy(), exp.df["item_idx"].to_numpy(), seed=seed + split)


def duplicate_half(exp: ExplanationData, seed: int) -> tuple[ExplanationData, np.ndarray]:
    """Sec. 4.5: sample half of the examples and add a copy of them with fresh user and item ids.

    Returns the new dataset (sampled rows, then their copies) and the sampled row indices.
    """
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(exp.df), len(exp.df) // 2, replace=False))
    half = exp.df.iloc[rows][["user", "item", "rating", "explanation", "tokens", "feature"]]
    copy_ = half.copy()
    copy_["user"] = "copy::" + copy_["user"].astype(str)
    copy_["item"] = "copy::" + copy_["item"].astype(str)
    return _finalise(pd.concat([half, copy_], ignore_index=True), exp.features, exp.source), rows


# ============================================================================ encoding
class Vocab:
    """Word <-> id map of the ``size`` most frequent training words plus ``<PAD> <UNK> <BOS> <EOS>``.

    Thin adapter over :class:`xrec_core.data.text.Vocabulary` giving the ids the models need;
    ``spec.words`` lets a generator write its output as text.
    """

    def __init__(self, token_lists: Sequence[Sequence[str]], size: int) -> None:
        from ...data.text import Vocabulary

        self.vocab = Vocabulary.build(token_lists, min_freq=1, max_size=size)
        v = self.vocab
        self.spec = TextSpec(vocab_size=len(v), pad_id=v.pad_id, bos_id=v.bos_id, eos_id=v.eos_id, words=tuple(v.itos))

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return list(self.vocab.encode(list(tokens)))


@dataclass
class EncodedSplit:
    """Tensors of one part (train/valid/test) of a split, and its sentences as tokens."""

    user: torch.Tensor
    item: torch.Tensor
    rating: torch.Tensor
    sentiment: torch.Tensor
    feature: torch.Tensor
    seq: torch.Tensor  # (N, max_words + 2)
    rows: np.ndarray   # row indices into the dataset
    tokens: list[list[str]]  # the explanations, cut at max_words
    pad_id: int

    def __len__(self) -> int:
        return len(self.rows)

    def batches(self, batch_size: int, shuffle: bool = False, seed: int = 0) -> Iterator[ExplanationBatch]:
        order = np.random.default_rng(seed).permutation(len(self)) if shuffle else np.arange(len(self))
        for s in range(0, len(order), batch_size):
            idx = torch.as_tensor(order[s:s + batch_size])
            seq = self.seq[idx]
            seq = seq[:, : int((seq != self.pad_id).sum(1).max())]  # trim padding columns
            yield ExplanationBatch(self.user[idx], self.item[idx], self.rating[idx], self.sentiment[idx], self.feature[idx], seq)


def encode_part(exp: ExplanationData, rows: np.ndarray, vocab: Vocab, max_words: int) -> EncodedSplit:
    """``<BOS> w_1 .. w_n <EOS>`` id sequences (cut at ``max_words``) and the ids of users, items, features."""
    df = exp.df.iloc[rows]
    spec = vocab.spec
    seq = torch.full((len(df), max_words + 2), spec.pad_id, dtype=torch.long)
    tokens = [list(t[:max_words]) for t in df["tokens"]]
    for k, toks in enumerate(tokens):
        ids = [spec.bos_id, *vocab.encode(toks), spec.eos_id]
        seq[k, : len(ids)] = torch.tensor(ids)
    feat = torch.tensor([vocab.encode([f])[0] for f in df["feature"]], dtype=torch.long)
    return EncodedSplit(torch.tensor(df["user_idx"].to_numpy()), torch.tensor(df["item_idx"].to_numpy()),
                        torch.tensor(df["rating"].to_numpy(), dtype=torch.float32), torch.tensor(df["sentiment"].to_numpy()),
                        feat, seq, np.asarray(rows), tokens, spec.pad_id)
