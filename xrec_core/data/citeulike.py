"""CiteULike-a and CiteULike-t (Wang & Blei 2011; Wang, Chen & Li 2013).

Files (0-based ids unless said otherwise):

* ``users.dat``: one line per user, ``n item_1 ... item_n``.
* ``item-tag.dat`` (-a): one line per item, ``n tag_1 ... tag_n``.
* ``tag-item.dat`` (-t): one line per *tag*, ``n item_1 ... item_n`` (the inverse orientation).
* ``tags.dat``: tag names, line = tag id.
* ``mult.dat``: one line per item, ``n word:count ...`` (bag of words over ``vocabulary.dat``).
* ``raw-data.csv`` (-a): ``doc.id,title,citeulike.id,raw.title,raw.abstract`` with 1-based doc ids.
* ``rawtext.dat`` (-t): documents in item order, each a ``##<id>`` header line followed by its text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import CorruptDataError


def _read_count_lists(path: Path) -> list[np.ndarray]:
    """Parse ``n id_1 ... id_n`` lines (a line with ``0`` or nothing is an empty list)."""
    out = []
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            parts = line.split()
            if not parts:
                out.append(np.zeros(0, dtype=np.int64))
                continue
            try:
                values = np.array([int(x) for x in parts], dtype=np.int64)
            except ValueError as exc:
                raise CorruptDataError(f"{path}: line {lineno} is not a list of integer ids ({exc})") from exc
            if values[0] != len(values) - 1:
                raise CorruptDataError(f"{path}: line {lineno} announces {values[0]} ids but has {len(values) - 1}")
            out.append(values[1:])
    return out


def parse_lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return [line.rstrip("\n") for line in handle]


def parse_mult(path: Path, n_words: int | None = None) -> sp.csr_matrix:
    """Parse ``mult.dat`` into an ``(n_items, n_words)`` CSR count matrix."""
    indptr, indices, data = [0], [], []
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            parts = line.split()
            if not parts:
                indptr.append(len(indices))
                continue
            n = int(parts[0])
            pairs = parts[1:]
            if n != len(pairs):
                raise CorruptDataError(f"{path}: line {lineno} announces {n} words but has {len(pairs)}")
            for pair in pairs:
                word, _, count = pair.partition(":")
                indices.append(int(word))
                data.append(float(count))
            indptr.append(len(indices))
    width = n_words if n_words is not None else (max(indices) + 1 if indices else 0)
    return sp.csr_matrix((np.array(data), np.array(indices, dtype=np.int64), np.array(indptr, dtype=np.int64)),
                         shape=(len(indptr) - 1, width))


def parse_raw_data_csv(path: Path, n_items: int) -> list[str]:
    """CiteULike-a ``raw-data.csv`` -> text (raw title + abstract) per 0-based item id."""
    df = pd.read_csv(path, encoding="latin-1")
    needed = {"doc.id", "raw.title", "raw.abstract"}
    if not needed <= set(df.columns):
        raise CorruptDataError(f"{path}: expected columns {sorted(needed)}, found {list(df.columns)}")
    texts = [""] * n_items
    for doc_id, title, abstract in zip(df["doc.id"], df["raw.title"], df["raw.abstract"]):
        idx = int(doc_id) - 1  # 1-based in this file only
        if 0 <= idx < n_items:
            texts[idx] = f"{title if isinstance(title, str) else ''} {abstract if isinstance(abstract, str) else ''}".strip()
    return texts


def parse_rawtext_dat(path: Path, n_items: int) -> list[str]:
    """CiteULike-t ``rawtext.dat``: a ``##<id>`` header line before each document's text, in item order.

    The k-th document belongs to item k (as ``lines[1::2]`` in common CiteULike-t loaders), so the
    ids in the headers, whichever base they use, are not needed; a text spread over several lines
    is joined. More documents than items is a :class:`CorruptDataError`.
    """
    docs: list[list[str]] = []
    for lineno, line in enumerate(parse_lines(path), 1):
        if line.startswith("##"):
            docs.append([])
        elif not docs:
            raise CorruptDataError(f"{path}: line {lineno} comes before the first '##<id>' document header")
        else:
            docs[-1].append(line.strip())
    if len(docs) > n_items:
        raise CorruptDataError(f"{path}: {len(docs)} documents for {n_items} items")
    texts = [" ".join(d).strip() for d in docs]
    return texts + [""] * (n_items - len(texts))


@dataclass
class CiteULikeData:
    """A CiteULike dataset: likes per user, tags per item, and the item text when present."""

    name: str
    likes: list[np.ndarray]
    n_items: int
    item_tags: list[np.ndarray]
    tag_names: list[str]
    bow: sp.csr_matrix | None
    vocabulary: list[str]
    texts: list[str] | None
    user_ids: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.likes)

    def interactions(self) -> sp.csr_matrix:
        """Binary ``(n_users, n_items)`` like matrix."""
        rows = np.repeat(np.arange(self.n_users), [len(x) for x in self.likes])
        cols = np.concatenate(self.likes) if self.likes else np.zeros(0, dtype=np.int64)
        m = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(self.n_users, self.n_items))
        m.data[:] = 1.0
        return m

    def tag_matrix(self) -> sp.csr_matrix:
        """Binary ``(n_items, n_tags)`` item-tag matrix."""
        rows = np.repeat(np.arange(len(self.item_tags)), [len(x) for x in self.item_tags])
        cols = np.concatenate(self.item_tags) if self.item_tags else np.zeros(0, dtype=np.int64)
        m = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(self.n_items, len(self.tag_names)))
        m.data[:] = 1.0
        return m


def build_citeulike(name: str, folder: Path, *, has_item_tag: bool, text_file: Path | None,
                    min_user_likes: int = 0) -> CiteULikeData:
    """Assemble a :class:`CiteULikeData` from the files in ``folder``."""
    likes = _read_count_lists(folder / "users.dat")
    tag_names = [t.strip() for t in parse_lines(folder / "tags.dat")]
    vocabulary = [w.strip() for w in parse_lines(folder / "vocabulary.dat")] if (folder / "vocabulary.dat").exists() else []
    bow = parse_mult(folder / "mult.dat", len(vocabulary) or None) if (folder / "mult.dat").exists() else None
    n_items = max(int(max((x.max() for x in likes if len(x)), default=-1)) + 1, bow.shape[0] if bow is not None else 0)
    if has_item_tag:
        item_tags = _read_count_lists(folder / "item-tag.dat")
        n_items = max(n_items, len(item_tags))
        item_tags += [np.zeros(0, dtype=np.int64)] * (n_items - len(item_tags))
    else:
        per_tag = _read_count_lists(folder / "tag-item.dat")
        lists: list[list[int]] = [[] for _ in range(n_items)]
        for tag, items in enumerate(per_tag):
            for item in items:
                if item < n_items:
                    lists[int(item)].append(tag)
        item_tags = [np.array(sorted(x), dtype=np.int64) for x in lists]
        tag_names += [f"tag{i}" for i in range(len(tag_names), len(per_tag))]
    texts = None
    if text_file is not None and text_file.exists():
        texts = parse_raw_data_csv(text_file, n_items) if text_file.suffix == ".csv" else parse_rawtext_dat(text_file, n_items)
    user_ids = np.array([u for u, x in enumerate(likes) if len(x) >= min_user_likes], dtype=np.int64)
    likes = [likes[u] for u in user_ids]
    return CiteULikeData(name, likes, n_items, item_tags, tag_names, bow, vocabulary, texts, user_ids)
