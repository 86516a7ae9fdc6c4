"""Simple retrieval baselines (issue 9): the item's, or the user's, most typical training explanation.

For a test pair ``(u, i, sentiment)`` the item baseline returns the training explanation of item ``i``
(with the same sentiment when the item has one, else any of the item's) that has the highest mean
unigram F1 with the item's other training explanations -- the item's "medoid" sentence; the user
baseline does the same over user ``u``'s training explanations. A key without training explanations
gets the corpus medoid. No learning. If the neural generators cannot beat the item medoid, they do not
personalise; if they cannot beat the user medoid, they do not explain the item beyond the sentence the
user habitually writes (on data where users repeat one text across variants of a product, as on
Amazon's All_Beauty, the user medoid is close to a copy of the reference).

They have the generator interface of the registry: ``fit(train, valid)`` reads a data part's
``item`` (or ``user``), ``sentiment`` and ``tokens`` (the validation part is not needed),
``generate(part)`` returns one sentence per row of a part.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..registry import GENERATION, register

#: the baselines' names in the chapter's tables
RETRIEVAL = "Retrieval (item medoid)"
USER_RETRIEVAL = "Retrieval (user medoid)"
RETRIEVALS = (RETRIEVAL, USER_RETRIEVAL)


def _unigram_f1_matrix(sents: Sequence[Sequence[str]]) -> np.ndarray:
    """Pairwise unigram-overlap F1 (clipped counts) between sentences; ``(n, n)``."""
    bags = [Counter(s) for s in sents]
    lens = np.array([max(len(s), 1) for s in sents], dtype=float)
    n = len(sents)
    f1 = np.zeros((n, n))
    for a in range(n):
        for b in range(a + 1, n):
            overlap = sum((bags[a] & bags[b]).values())
            f1[a, b] = f1[b, a] = 2.0 * overlap / (lens[a] + lens[b])
    return f1


def medoid(sents: Sequence[Sequence[str]], max_candidates: int = 300, seed: int = 0) -> int:
    """Index of the sentence with the highest mean unigram F1 to the others (on at most ``max_candidates``)."""
    idx = np.arange(len(sents))
    if len(idx) > max_candidates:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_candidates, replace=False))
    if len(idx) == 1:
        return int(idx[0])
    f1 = _unigram_f1_matrix([sents[k] for k in idx])
    return int(idx[int(np.argmax(f1.sum(1)))])


class MedoidRetrieval:
    """Retrieve the medoid training explanation of the row's item or user (see module docstring).

    Parameters
    ----------
    by : {"item", "user"}
        The data part's field whose training explanations are searched. No other hyper-parameters.
    """

    def __init__(self, by: str = "item") -> None:
        if by not in ("item", "user"):
            raise ValueError(f"by must be 'item' or 'user', got {by!r}")
        self.by = by

    def fit(self, train: Any, valid: Any | None = None) -> "MedoidRetrieval":
        """Index the training part (``train.item`` or ``train.user``, ``train.sentiment``, ``train.tokens``)."""
        return self.fit_sentences(np.asarray(getattr(train, self.by)).tolist(), np.asarray(train.sentiment).tolist(), train.tokens)

    def generate(self, part: Any) -> list[str]:
        """The retrieved explanation of every row of ``part`` (its ``item`` or ``user``, ``sentiment``), as text."""
        return [" ".join(s) for s in self.predict(np.asarray(getattr(part, self.by)).tolist(), np.asarray(part.sentiment).tolist())]

    def fit_sentences(self, keys: Sequence[int], sentiments: Sequence[int], sentences: Sequence[Sequence[str]]) -> "MedoidRetrieval":
        """Index token lists by key (item or user) and by (key, sentiment)."""
        if not (len(keys) == len(sentiments) == len(sentences)) or not len(keys):
            raise ValueError("keys, sentiments and sentences must be non-empty and of equal length")
        groups: dict[tuple[int, int] | int, list[int]] = defaultdict(list)
        for k, (key, s) in enumerate(zip(keys, sentiments)):
            groups[(int(key), int(s))].append(k)
            groups[int(key)].append(k)
        self.choice = {key: list(sentences[rows[medoid([sentences[r] for r in rows])]]) for key, rows in groups.items()}
        self.fallback = list(sentences[medoid(sentences)])
        return self

    def predict(self, keys: Sequence[int], sentiments: Sequence[int]) -> list[list[str]]:
        return [self.choice.get((int(k), int(s)), self.choice.get(int(k), self.fallback)) for k, s in zip(keys, sentiments)]


@register(RETRIEVAL, role=GENERATION, source="this book (issue 9): the item's medoid training explanation")
def item_medoid_retrieval() -> MedoidRetrieval:
    """The item's medoid training explanation."""
    return MedoidRetrieval("item")


@register(USER_RETRIEVAL, role=GENERATION, source="this book: the user's medoid training explanation")
def user_medoid_retrieval() -> MedoidRetrieval:
    """The user's medoid training explanation."""
    return MedoidRetrieval("user")
