"""Phrase-level (feature, opinion, sentiment) extraction, standing in for the Sentires tool.

The paper extracts feature-opinion-sentiment tuples with Sentires (Zhang et al. 2014), a Java
tool distributed outside the package registries. This module builds the same kind of tuples
from review text with a real sentiment lexicon, VADER's (Hutto & Gilbert 2014, shipped inside
the ``vaderSentiment`` wheel; no download at run time):

1. Split reviews into clauses (sentences, commas, "but"); tokenize each clause; an *opinion word* is a lexicon word with a non-zero valence.
2. A *candidate feature* is a non-stop-word, non-opinion, purely alphabetic token of 3+ letters
   within ``window`` tokens of an opinion word. Sentires keeps nouns with a POS tagger; no tagger
   model is installable offline, so we use the corpus itself as the tagger: a word counts as a
   noun when at least ``min_noun_rate`` of its occurrences follow a determiner or possessive
   ("the sound", "my guitar"), which verbs and adverbs ("works", "just") almost never do. Of
   these, we keep the ``n_features`` candidates with the highest document frequency among those
   co-occurring with opinions in at least ``min_reviews`` reviews — the paper's Table 2 feature
   counts (325 for Instrument) are the target size.
3. The sentiment of a (feature, opinion) pair is the sign of the opinion's valence, flipped
   when a negation (``not``, ``no``, ``never``, ``n't``...) precedes the opinion within two tokens.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

DETERMINERS = frozenset({"the", "a", "an", "this", "that", "these", "those", "my", "your", "its", "their", "his", "her",
                         "our", "each", "every", "any", "some", "no"})
NEGATIONS = frozenset({"not", "no", "never", "none", "nothing", "nor", "neither", "cannot", "without", "hardly"})
_SENTENCE = re.compile(r"[.!?;,\n]+|\bbut\b|\bhowever\b")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


@lru_cache(maxsize=1)
def vader_lexicon() -> dict[str, float]:
    """VADER's word -> mean valence (-4..4) table, read from the installed ``vaderSentiment`` package."""
    try:
        import vaderSentiment
    except ImportError as exc:  # pragma: no cover - it is a core dependency
        raise ImportError("the sentiment lexicon comes from the vaderSentiment package: pip install vaderSentiment") from exc
    path = os.path.join(os.path.dirname(vaderSentiment.__file__), "vader_lexicon.txt")
    lexicon = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2 and _WORD.fullmatch(parts[0]):
                lexicon[parts[0]] = float(parts[1])
    return lexicon


@dataclass(frozen=True)
class Mention:
    feature: str
    opinion: str
    sentiment: int  # +1 / -1


def _is_negated(tokens: Sequence[str], idx: int) -> bool:
    return any(t in NEGATIONS or t.endswith("n't") for t in tokens[max(0, idx - 2):idx])


def candidate_mentions(text: str, lexicon: dict[str, float] | None = None, window: int = 3) -> list[Mention]:
    """All (candidate feature, opinion, sentiment) pairs in ``text``, before feature selection."""
    lexicon = vader_lexicon() if lexicon is None else lexicon
    out = []
    for sentence in _SENTENCE.split(text.lower()):
        tokens = _WORD.findall(sentence)
        for idx, tok in enumerate(tokens):
            valence = lexicon.get(tok, 0.0)
            if valence == 0.0:
                continue
            polarity = (1 if valence > 0 else -1) * (-1 if _is_negated(tokens, idx) else 1)
            for j in range(max(0, idx - window), min(len(tokens), idx + window + 1)):
                cand = tokens[j]
                if (j == idx or len(cand) < 3 or not cand.isalpha() or cand in ENGLISH_STOP_WORDS or cand in NEGATIONS
                        or cand in lexicon):
                    continue
                out.append(Mention(cand, tok, polarity))
    return out


def noun_rates(texts: Iterable[str], words: set[str]) -> dict[str, float]:
    """For each of ``words``, the share of its occurrences in ``texts`` right after a determiner or possessive."""
    seen: Counter[str] = Counter()
    after_det: Counter[str] = Counter()
    for text in texts:
        tokens = _WORD.findall(text.lower())
        for prev, tok in zip([""] + tokens[:-1], tokens):
            if tok in words:
                seen[tok] += 1
                after_det[tok] += prev in DETERMINERS
    return {w: after_det[w] / seen[w] for w in seen}


@dataclass
class SentimentExtractor:
    """Select features from a corpus and turn each review into (feature id, sentiment) mentions."""

    n_features: int = 325
    min_reviews: int = 5
    window: int = 3
    min_noun_rate: float = 0.1

    def fit(self, texts: Iterable[str]) -> "SentimentExtractor":
        texts = list(texts)
        df: Counter[str] = Counter()
        for text in texts:
            df.update({m.feature for m in candidate_mentions(text, window=self.window)})
        self.noun_rate_ = noun_rates(texts, set(df))
        kept = [f for f, c in sorted(df.items(), key=lambda kv: (-kv[1], kv[0]))
                if c >= self.min_reviews and self.noun_rate_.get(f, 0.0) >= self.min_noun_rate]
        self.features_ = kept[: self.n_features]
        self.index_ = {f: i for i, f in enumerate(self.features_)}
        return self

    def transform(self, texts: Iterable[str]) -> list[list[tuple[int, int, str]]]:
        """Per review, its ``(feature id, sentiment, opinion word)`` mentions of selected features."""
        return [[(self.index_[m.feature], m.sentiment, m.opinion) for m in candidate_mentions(t, window=self.window)
                 if m.feature in self.index_] for t in texts]
