"""Opinosis (Ganesan, Zhai & Han, COLING 2010): graph-based abstractive summaries of an item's reviews.

Docs
----
Opinosis builds one *word graph* from all review sentences of an item: a node per distinct word,
an edge for every pair of consecutive words, and on each node its *positional reference list*
(PRI), the (sentence id, position) pairs where the word occurs. A candidate summary sentence is a
path through the graph that starts at a *valid start node* (a word whose average position in its
sentences is at most ``sigma_vsn``), ends at a *valid end node* (sentence punctuation or a
coordinating conjunction) and is *well-formed*. Walking an edge intersects the path's PRI with
the next node's, keeping only continuations at most ``sigma_gap`` positions later in the same
sentence; the size of that overlap is the path's *redundancy* -- how many review sentences
support it -- and paths whose redundancy drops below ``sigma_r`` are abandoned. A path is scored
with the paper's length-weighted redundancy (``Opinosis_wt``): the sum over its prefixes of
``log2(prefix length) * redundancy``, divided by the path length. When a path reaches a
*collapsible* node (a linking verb such as "is"), every valid continuation from that node is
collected, near-duplicates are removed, and the anchor is stitched with up to ``max_collapsed``
continuations joined by "and" ("the strap is comfortable and cheap"); the stitched sentence
scores the anchor's score plus the mean score of its collapsed continuations (our reading of the
paper's "anchor score + average collapsed path score"). Candidates are ranked by score, a candidate
whose word-set Jaccard similarity to a better one is at least ``sigma_dup`` is dropped, and the
best ``max_sentences`` (or as many as fit in ``max_words``) form the summary.

Substitute for the part-of-speech tags. The original nodes are ``word::POS`` pairs, end nodes
and collapsible nodes are recognised by their tags (``CC``, punctuation; ``VB*``) and
well-formedness is a set of POS regular expressions. No tagger model can be downloaded here, so
nodes are lower-cased words, end nodes are the punctuation tokens ``. ! ? , ; :`` and the
conjunctions "and, but, yet, or, so", collapsible nodes are a closed list of linking verbs, and a
sentence is well-formed when it has at least ``min_words`` words, contains a content word
(outside scikit-learn's English stop-word list) and does not end on a function word that cannot
close an English sentence (articles, prepositions, auxiliaries, conjunctions). Traversal is
depth-first without revisiting a node on the same path, cut at ``max_path_len`` words and at
``max_expansions`` edge walks per summary so that items with thousands of sentences stay cheap.
Two additions of ours for use as an item's explanation: when no path of an item reaches
``sigma_r`` (items with a handful of reviews), ``sigma_r`` is lowered step by step down to 1
(then single sentences qualify) rather than returning nothing (``relax=False`` keeps the
original behaviour), and a summary sentence whose path ends at "," or a conjunction is closed
with ".".
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from ..search_space import Int
from .registry import GENERATION, register

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[.!?,;:]")
_SENT_END = {".", "!", "?"}
_PUNCT_END = {".", "!", "?", ",", ";", ":"}
_CONJ_END = {"and", "but", "yet", "or", "so"}
_COLLAPSIBLE = {"is", "are", "was", "were", "be", "been", "seems", "seem", "looks", "look", "feels", "feel",
                "sounds", "sound", "works", "work"}
_NO_END = {"the", "a", "an", "of", "to", "in", "on", "at", "for", "with", "from", "by", "as", "into", "about",
           "and", "but", "or", "yet", "so", "if", "than", "because", "that", "which", "who", "is", "are", "was",
           "were", "be", "been", "am", "has", "have", "had", "do", "does", "did", "will", "would", "can", "could",
           "should", "my", "your", "his", "her", "its", "our", "their", "this", "these", "those", "i", "very",
           "not", "no", "it's", "i'm", "really", "just", "too", "more", "most", "quite", "pretty"}


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return ENGLISH_STOP_WORDS


def split_sentences(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased token lists, one per sentence, each ending in its punctuation (``.`` added if missing)."""
    out = []
    for text in texts:
        toks = _TOKEN.findall(str(text).lower())
        cur: list[str] = []
        for t in toks:
            if t in _SENT_END:
                if cur:
                    out.append(cur + [t])
                cur = []
            else:
                cur.append(t)
        if cur:
            out.append(cur + ["."])
    return out


@dataclass
class _Candidate:
    words: list[str]
    score: float


@register("Opinosis", role=GENERATION, search_space={"sigma_r": Int(1, 4), "sigma_gap": Int(2, 5)},
          source="Ganesan, Zhai & Han 2010")
class Opinosis:
    """Graph-based abstractive summarizer of opinions (Ganesan et al. 2010), ``Opinosis_wt`` scoring.

    Parameters
    ----------
    sigma_r : int
        Minimum redundancy (supporting sentences) of a path (paper: 2).
    sigma_gap : int
        Maximum position gap between consecutive words of a path in a supporting sentence (paper: 3).
    sigma_vsn : float
        Maximum average position of a valid start node (paper: 15).
    sigma_dup : float
        Jaccard similarity above which a lower-scored candidate is a duplicate (ours: 0.5).
    max_sentences : int
        Summary size in sentences (paper: 2).
    min_words, max_path_len : int
        Shortest well-formed sentence and longest path, in tokens.
    max_collapsed : int
        Most continuations stitched after a collapsible node.
    max_expansions : int
        Budget of edge walks per summary.
    relax : bool
        When no path reaches ``sigma_r`` (items with few reviews), retry with ``sigma_r - 1``,
        down to 1, instead of returning an empty summary (our addition).
    """

    def __init__(self, sigma_r: int = 2, sigma_gap: int = 3, sigma_vsn: float = 15.0, sigma_dup: float = 0.5,
                 max_sentences: int = 2, min_words: int = 3, max_path_len: int = 18, max_collapsed: int = 3,
                 max_expansions: int = 50_000, relax: bool = True) -> None:
        if sigma_r < 1 or sigma_gap < 1 or max_sentences < 1:
            raise ValueError(f"need sigma_r, sigma_gap, max_sentences >= 1; "
                             f"got {sigma_r}, {sigma_gap}, {max_sentences}")
        self.sigma_r, self.sigma_gap, self.sigma_vsn, self.sigma_dup = sigma_r, sigma_gap, sigma_vsn, sigma_dup
        self.max_sentences, self.min_words, self.max_path_len = max_sentences, min_words, max_path_len
        self.max_collapsed, self.max_expansions, self.relax = max_collapsed, max_expansions, relax
        self._stop = _stop_words()

    # -- graph -----------------------------------------------------------------------------
    def build_graph(self, sentences: list[list[str]]) -> tuple[dict, dict]:
        """Adjacency ``{word: set(next words)}`` and PRI ``{word: {sentence id: [positions]}}``."""
        edges: dict[str, set[str]] = defaultdict(set)
        pri: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
        for sid, sent in enumerate(sentences):
            for pid, w in enumerate(sent):
                pri[w][sid].append(pid)
                if pid:
                    edges[sent[pid - 1]].add(w)
        return edges, pri

    def _is_vsn(self, word: str, pri: dict) -> bool:
        if word in _PUNCT_END or word in _CONJ_END:
            return False
        positions = [p for ps in pri[word].values() for p in ps]
        return sum(positions) / len(positions) <= self.sigma_vsn

    @staticmethod
    def _is_ven(word: str) -> bool:
        return word in _PUNCT_END or word in _CONJ_END

    def _well_formed(self, words: list[str]) -> bool:
        body = [w for w in words if w not in _PUNCT_END]
        if body and body[-1] in _CONJ_END:
            body = body[:-1]
        return (len(body) >= self.min_words and any(w not in self._stop for w in body)
                and body[-1] not in _NO_END)

    def _advance(self, overlap: set[tuple[int, int]], nxt: dict[int, list[int]]) -> set[tuple[int, int]]:
        """PRI intersection with the gap constraint: continuations of the path into ``nxt``."""
        out = set()
        for sid, pid in overlap:
            for p in nxt.get(sid, ()):
                if 0 < p - pid <= self.sigma_gap:
                    out.add((sid, p))
        return out

    # -- traversal -------------------------------------------------------------------------
    def _traverse(self, edges, pri, node: str, overlap, words: list[str], raw: float, out: list[_Candidate],
                  allow_collapse: bool, prefix: tuple[str, ...] = ()) -> None:
        """Depth-first search of valid paths from ``node``; ``prefix`` is a collapse anchor before ``words``."""
        if len(overlap) < self._sigma_r or self._budget <= 0:
            return
        if self._is_ven(node) and self._well_formed(list(prefix) + words):
            out.append(_Candidate(words, raw / len(words)))
        if len(prefix) + len(words) >= self.max_path_len or node in _SENT_END:
            return
        for nxt in sorted(edges.get(node, ())):
            if nxt in words or nxt in prefix:
                continue
            self._budget -= 1
            new_overlap = self._advance(overlap, pri[nxt])
            if len(new_overlap) < self._sigma_r:
                continue
            new_words = words + [nxt]
            new_raw = raw + math.log2(len(new_words)) * len(new_overlap)
            if allow_collapse and nxt in _COLLAPSIBLE:
                self._collapse(edges, pri, nxt, new_overlap, new_words, new_raw / len(new_words), out)
            self._traverse(edges, pri, nxt, new_overlap, new_words, new_raw, out, allow_collapse, prefix)

    def _collapse(self, edges, pri, node, overlap, anchor: list[str], anchor_score: float,
                  out: list[_Candidate]) -> None:
        """Stitch the anchor (ending at collapsible ``node``) with its best distinct continuations.

        The continuations are scored as paths of their own starting at ``node``; the stitched
        sentence scores the anchor's score plus the mean score of the stitched continuations.
        """
        tails: list[_Candidate] = []
        self._traverse(edges, pri, node, overlap, [node], 0.0, tails, allow_collapse=False, prefix=tuple(anchor[:-1]))
        tails = self._dedupe([c for c in tails if len(c.words) > 1], limit=self.max_collapsed)
        if len(tails) < 2:
            return  # a single continuation is an ordinary path, found by the plain traversal
        parts = []
        for tail in tails:
            body = [w for w in tail.words[1:] if w not in _PUNCT_END]
            if body and body[-1] in _CONJ_END:
                body = body[:-1]
            if body:
                parts.append(["and"] + body if parts else body)
        if len(parts) < 2:
            return
        stitched = anchor + [w for p in parts for w in p] + ["."]
        out.append(_Candidate(stitched, anchor_score + sum(t.score for t in tails) / len(tails)))

    def _dedupe(self, cands: list[_Candidate], limit: int | None = None) -> list[_Candidate]:
        kept: list[_Candidate] = []
        for c in sorted(cands, key=lambda c: (-c.score, c.words)):
            s = set(c.words) - _PUNCT_END
            if all(len(s & k) / max(1, len(s | k)) < self.sigma_dup for k in (set(k.words) - _PUNCT_END for k in kept)):
                kept.append(c)
                if limit is not None and len(kept) >= limit:
                    break
        return kept

    # -- public API ------------------------------------------------------------------------
    def candidates(self, texts: Sequence[str], sigma_r: int | None = None) -> list[_Candidate]:
        """All scored candidate sentences of ``texts`` (before duplicate removal), best first."""
        self._sigma_r = self.sigma_r if sigma_r is None else sigma_r
        sentences = split_sentences(texts)
        edges, pri = self.build_graph(sentences)
        self._budget = self.max_expansions
        out: list[_Candidate] = []
        for node in sorted(pri):
            if self._is_vsn(node, pri):
                overlap = {(sid, p) for sid, ps in pri[node].items() for p in ps}
                self._traverse(edges, pri, node, overlap, [node], 0.0, out, allow_collapse=True)
        return sorted(out, key=lambda c: (-c.score, c.words))

    def summarize(self, texts: Sequence[str], max_words: int | None = None) -> str:
        """Abstractive summary of ``texts`` (an item's reviews): up to ``max_sentences`` sentences.

        Parameters
        ----------
        texts : list of str
            Raw review texts.
        max_words : int, optional
            Word budget: sentences are added best-first while the total stays within it (the
            best sentence is always kept, cut to the budget).

        Returns
        -------
        str
            The summary, sentences separated by spaces; empty when no path reaches ``sigma_r``.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a list of review strings, not one string")
        chosen: list[_Candidate] = []
        sigma_r = self.sigma_r
        while not chosen and sigma_r >= 1:
            chosen = self._dedupe(self.candidates(texts, sigma_r), limit=self.max_sentences)
            sigma_r = sigma_r - 1 if self.relax else 0
        words: list[str] = []
        for c in chosen:
            sent = list(c.words)
            if sent[-1] not in _SENT_END:  # a path may end at "," or "but": close it as a sentence
                sent[-1] = "."
            if max_words is not None and words and len(words) + len(sent) > max_words:
                break
            words.extend(sent)
        if max_words is not None:
            words = words[:max_words]
        return " ".join(words)
