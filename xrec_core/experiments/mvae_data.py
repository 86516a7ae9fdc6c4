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

Ratings >= 3 are positive sentiment (Sec. 4.4). :func:`random_split` gives PETER-style 8:1:1
splits in which every user and item of the validation/test parts also occurs in training.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

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


def random_split(data: ExplanationData, seed: int, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> dict[str, np.ndarray]:
    """PETER-style random split: train/valid/test row indices; every user and item is in training.

    The first shuffled sample of every user and of every item goes to training; the rest are cut
    by ``ratios`` (so training is a little larger than 80% on sparse data).
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data.df))
    users = data.df["user_idx"].to_numpy()[order]
    items = data.df["item_idx"].to_numpy()[order]
    forced = np.zeros(len(order), dtype=bool)
    _, first_u = np.unique(users, return_index=True)
    _, first_i = np.unique(items, return_index=True)
    forced[first_u] = True
    forced[first_i] = True
    rest = order[~forced]
    n = len(order)
    n_test = int(round(ratios[2] * n))
    n_valid = int(round(ratios[1] * n))
    if n_test + n_valid > len(rest):
        raise ValueError("too few samples to split: every user/item needs one training sample")
    test, valid, train_rest = rest[:n_test], rest[n_test:n_test + n_valid], rest[n_test + n_valid:]
    return {"train": np.sort(np.concatenate([order[forced], train_rest])), "valid": np.sort(valid), "test": np.sort(test)}


def explanation_stats(data: ExplanationData) -> pd.DataFrame:
    """Table 1 of the paper for our data: users, items, samples, per-user/item means, words per explanation."""
    df = data.df
    return pd.DataFrame({
        "statistic": ["# of users", "# of items", "# of reviews", "Avg. # of reviews/user", "Avg. # of reviews/item",
                      "Avg. # of words/explanation", "# of features"],
        "value": [data.n_users, data.n_items, len(df), len(df) / data.n_users, len(df) / data.n_items,
                  float(df["tokens"].map(len).mean()), len(data.features)],
    })
