"""A simple retrieval baseline (issue 9): the item's most typical training explanation.

For a test pair ``(u, i, sentiment)`` it returns the training explanation of item ``i`` (with the
same sentiment when the item has one, else any of the item's) that has the highest mean unigram
F1 with the item's other training explanations -- the item's "medoid" sentence. Items without
training explanations get the corpus medoid of the most frequent features. No learning, no
user signal: if the neural generators cannot beat it, they do not personalise.

It has the generator interface of the registry: ``fit(train, valid)`` reads a data part's
``item``, ``sentiment`` and ``tokens`` (the validation part is not needed), ``generate(part)``
returns one sentence per row of a part.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..registry import GENERATION, register

#: the baseline's name in the chapter's tables
RETRIEVAL = "Retrieval (item medoid)"


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


@register(RETRIEVAL, role=GENERATION, source="this book (issue 9): the item's medoid training explanation")
class ItemMedoidRetrieval:
    """Retrieve the item's medoid training explanation (see module docstring). No hyper-parameters."""

    def fit(self, train: Any, valid: Any | None = None) -> "ItemMedoidRetrieval":
        """Index the training part (``train.item``, ``train.sentiment``, ``train.tokens``)."""
        return self.fit_sentences(np.asarray(train.item).tolist(), np.asarray(train.sentiment).tolist(), train.tokens)

    def generate(self, part: Any) -> list[str]:
        """The retrieved explanation of every row of ``part`` (``part.item``, ``part.sentiment``), as text."""
        return [" ".join(s) for s in self.predict(np.asarray(part.item).tolist(), np.asarray(part.sentiment).tolist())]

    def fit_sentences(self, items: Sequence[int], sentiments: Sequence[int], sentences: Sequence[Sequence[str]]) -> "ItemMedoidRetrieval":
        """Index token lists by item and by (item, sentiment)."""
        if not (len(items) == len(sentiments) == len(sentences)) or not len(items):
            raise ValueError("items, sentiments and sentences must be non-empty and of equal length")
        groups: dict[tuple[int, int] | int, list[int]] = defaultdict(list)
        for k, (i, s) in enumerate(zip(items, sentiments)):
            groups[(int(i), int(s))].append(k)
            groups[int(i)].append(k)
        self.choice = {key: list(sentences[rows[medoid([sentences[r] for r in rows])]]) for key, rows in groups.items()}
        self.fallback = list(sentences[medoid(sentences)])
        return self

    def predict(self, items: Sequence[int], sentiments: Sequence[int]) -> list[list[str]]:
        return [self.choice.get((int(i), int(s)), self.choice.get(int(i), self.fallback)) for i, s in zip(items, sentiments)]
