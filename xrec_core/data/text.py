"""Shared text preprocessing: tokenization, vocabulary, review documents per user/item."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

PAD, UNK, BOS, EOS, NUM = "<PAD>", "<UNK>", "<BOS>", "<EOS>", "<NUM>"
SPECIALS = (PAD, UNK, BOS, EOS, NUM)

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]", re.IGNORECASE)
_NUMBER = re.compile(r"^\d+(?:[.,]\d+)*$")


def tokenize(text: str, lowercase: bool = True, keep_punct: bool = True) -> list[str]:
    """Split ``text`` into word tokens; numbers become ``<NUM>``.

    Words keep inner apostrophes (``don't``); punctuation marks are tokens of their own unless
    ``keep_punct=False``.
    """
    if not isinstance(text, str):
        return []
    if lowercase:
        text = text.lower()
    out = []
    for tok in _TOKEN.findall(text):
        if _NUMBER.match(tok):
            out.append(NUM)
        elif tok[0].isalnum():
            out.append(tok)
        elif keep_punct:
            out.append(tok)
    return out


@dataclass
class Vocabulary:
    """Token <-> id map with the specials ``<PAD>`` = 0, ``<UNK>``, ``<BOS>``, ``<EOS>``, ``<NUM>``."""

    itos: list[str] = field(default_factory=lambda: list(SPECIALS))

    def __post_init__(self) -> None:
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_freq: int = 1, max_size: int | None = None) -> "Vocabulary":
        """Keep words seen at least ``min_freq`` times, most frequent first (ties alphabetical), at most ``max_size`` (specials included)."""
        counts = Counter(t for toks in token_lists for t in toks if t not in SPECIALS)
        words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max(0, max_size - len(SPECIALS))]
        return cls(list(SPECIALS) + words)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    @property
    def pad_id(self) -> int:
        return self.stoi[PAD]

    @property
    def unk_id(self) -> int:
        return self.stoi[UNK]

    @property
    def bos_id(self) -> int:
        return self.stoi[BOS]

    @property
    def eos_id(self) -> int:
        return self.stoi[EOS]

    def encode(self, tokens: Sequence[str], add_bos: bool = False, add_eos: bool = False) -> list[int]:
        ids = [self.stoi.get(t, self.unk_id) for t in tokens]
        return ([self.bos_id] if add_bos else []) + ids + ([self.eos_id] if add_eos else [])

    def decode(self, ids: Iterable[int], strip_specials: bool = True) -> list[str]:
        out = []
        for i in ids:
            tok = self.itos[int(i)]
            if tok == EOS and strip_specials:
                break
            if strip_specials and tok in (PAD, BOS):
                continue
            out.append(tok)
        return out


def documents_by(df: pd.DataFrame, key: str, text_col: str = "text", time_col: str = "time") -> dict:
    """Review texts grouped by ``key`` (``"user"`` or ``"item"``), each group in chronological order."""
    ordered = df.sort_values([key, time_col], kind="stable")
    return {k: list(g[text_col]) for k, g in ordered.groupby(key, sort=False)}
