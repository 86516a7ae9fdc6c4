"""Language-model and review-similarity metrics of the MT chapter (Lu, Dong & Smyth 2018, Sec. 4.2).

* **Perplexity** (Table 3): "the exponent of the average negative log-likelihood per word",
  ``exp(total_nll / n_tokens)`` with natural logarithms. Every language model of the chapter
  counts the same tokens: the words of a review after the shared vocabulary's ``<UNK>`` mapping,
  plus one ``<EOS>`` per review; ``<BOS>`` and ``<PAD>`` are never predicted.
* **tf-idf cosine** (Table 4): each review becomes a vector of
  ``tf-idf(t, d) = (1 + log tf_{t,d}) * log(N / df_t)`` over the vocabulary, and generated and
  ground-truth reviews are compared by the cosine of their vectors. ``N`` and ``df_t`` come
  from a reference corpus (the training reviews of the fold).

The tf-idf weights are computed here with :mod:`scipy.sparse` rather than scikit-learn's
``TfidfVectorizer``: with ``smooth_idf=False`` sklearn's idf is ``log(N/df) + 1``, not the
paper's ``log(N/df)``, and it cannot be told to drop the ``+ 1``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

Tokens = Sequence[str]


def perplexity_from_nll(total_nll: float, n_tokens: int) -> float:
    """Perplexity ``exp(total_nll / n_tokens)`` (natural log NLL summed over ``n_tokens`` predicted tokens)."""
    if n_tokens <= 0:
        raise ValueError(f"perplexity needs at least one token, got n_tokens={n_tokens}")
    if not math.isfinite(total_nll) or total_nll < 0:
        raise ValueError(f"total_nll must be a finite non-negative number, got {total_nll}")
    return float(math.exp(total_nll / n_tokens))


def _term_counts(docs: Sequence[Tokens], index: dict[str, int]) -> sp.csr_matrix:
    """``(len(docs), len(index))`` term-count matrix; terms outside ``index`` are dropped."""
    rows, cols = [], []
    for d, doc in enumerate(docs):
        ids = [index[t] for t in doc if t in index]
        rows.extend([d] * len(ids))
        cols.extend(ids)
    data = np.ones(len(rows), dtype=np.float64)
    mat = sp.csr_matrix((data, (rows, cols)), shape=(len(docs), len(index)))
    mat.sum_duplicates()
    return mat


def tfidf_vectors(docs: Sequence[Tokens], corpus: Sequence[Tokens]) -> sp.csr_matrix:
    """Rows ``(1 + log tf) * log(N / df)`` of ``docs``, with ``N`` and ``df`` taken from ``corpus``.

    Terms that never occur in ``corpus`` have no defined idf (``df = 0``) and get weight 0, as
    if outside the vocabulary; terms occurring in every corpus document get idf 0 by the formula.
    """
    if not corpus:
        raise ValueError("tf-idf needs a non-empty reference corpus")
    index: dict[str, int] = {}
    for doc in corpus:
        for t in doc:
            index.setdefault(t, len(index))
    df = np.asarray((_term_counts(corpus, index) > 0).sum(axis=0)).ravel()  # (V,)
    idf = np.log(len(corpus) / df)  # (V,) every df >= 1 by construction of index
    tf = _term_counts(docs, index)  # (n, V)
    tf.data = 1.0 + np.log(tf.data)
    return sp.csr_matrix(tf.multiply(idf[None, :]))


def tfidf_cosine(generated: Sequence[Tokens], references: Sequence[Tokens], corpus: Sequence[Tokens]) -> np.ndarray:
    """Per-pair cosine similarity of tf-idf vectors (MT paper, Sec. 4.2, Table 4).

    Parameters
    ----------
    generated, references : list of token lists
        Pair ``k`` compares ``generated[k]`` with ``references[k]``.
    corpus : list of token lists
        Documents defining ``N`` and ``df`` (the fold's training reviews). Terms unseen in the
        corpus get weight 0 (their idf ``log(N/0)`` is undefined).

    Returns
    -------
    numpy.ndarray of shape ``(len(generated),)``
        Cosine in ``[0, 1]``; 0 when either vector is all zeros (e.g. an empty generation).
    """
    if len(generated) != len(references):
        raise ValueError(f"generated ({len(generated)}) and references ({len(references)}) differ in length")
    if not generated:
        raise ValueError("no review pairs to compare")
    g = tfidf_vectors(generated, corpus)  # (n, V)
    r = tfidf_vectors(references, corpus)  # (n, V)
    dots = np.asarray(g.multiply(r).sum(axis=1)).ravel()
    norms = np.sqrt(np.asarray(g.multiply(g).sum(axis=1)).ravel() * np.asarray(r.multiply(r).sum(axis=1)).ravel())
    out = np.zeros(len(generated))
    nz = norms > 0
    out[nz] = dots[nz] / norms[nz]
    return out
