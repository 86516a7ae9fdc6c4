"""CBOW pre-training of the word embeddings (Sec. 4.1.2) with gensim's Word2Vec."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pretrain_cbow(sentences: Sequence[Sequence[str]], itos: Sequence[str], k: int = 200, *, window: int = 5,
                  epochs: int = 5, min_count: int = 1, seed: int = 0, workers: int = 1,
                  special: Sequence[str] = ("<PAD>",)) -> np.ndarray:
    """Train CBOW (``sg=0``) on ``sentences`` and return a ``(len(itos), k)`` matrix in vocabulary order.

    Words of ``itos`` that CBOW did not learn (special tokens, words below ``min_count``) keep a
    small random vector; the tokens named in ``special`` (padding) get zeros.
    """
    from gensim.models import Word2Vec

    rng = np.random.default_rng(seed)
    out = rng.normal(0.0, 0.1, size=(len(itos), k)).astype(np.float32)
    sentences = [list(s) for s in sentences if len(s)]
    if sentences:
        w2v = Word2Vec(sentences=sentences, vector_size=k, window=window, min_count=min_count, sg=0,
                       epochs=epochs, seed=seed, workers=workers)
        for i, w in enumerate(itos):
            if w in w2v.wv.key_to_index:
                out[i] = w2v.wv[w]
    for i, w in enumerate(itos):
        if w in special:
            out[i] = 0.0
    return out
