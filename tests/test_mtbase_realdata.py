"""The MT baselines on a slice of the real Amazon 2014 Musical Instruments reviews (XREC_DATA)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def reviews(data_dir):
    from xrec_core.data import load_reviews

    return load_reviews("amazon2014-instruments", data_dir=data_dir).iloc[:1000]


def test_ngram_orders_on_real_reviews(reviews):
    from xrec_core.data.text import Vocabulary, tokenize
    from xrec_core.models.ngram_lm import InterpolatedNgramLM

    docs = [tokenize(t)[:30] for t in reviews["text"]]
    train, test = docs[:800], docs[800:]
    vocab = Vocabulary.build(train, min_freq=2)
    ppl = [InterpolatedNgramLM(vocab, n=n).fit(train).perplexity(test) for n in (1, 2, 3)]
    assert ppl[2] < ppl[1] < ppl[0] < len(vocab) - 2
    # weights: more history helps on real text, so the bigram weight is substantial
    assert InterpolatedNgramLM(vocab, n=3).fit(train).weights[2] > 0.1


def test_opinosis_summary_is_built_from_the_items_own_words(reviews):
    from xrec_core.data.text import tokenize
    from xrec_core.metrics.language import tfidf_cosine
    from xrec_core.models.opinosis import Opinosis, split_sentences

    top = reviews["item"].value_counts().index[:5]
    texts = {j: list(reviews.loc[reviews["item"] == j, "text"]) for j in top}
    summaries = {j: Opinosis().summarize(texts[j], max_words=30) for j in top}
    for j in top:
        words = summaries[j].split()
        assert 0 < len(words) <= 30
        source = {w for s in split_sentences(texts[j]) for w in s}
        assert set(words) <= source | {"and", "."}  # a path through the item's word graph
    corpus = [tokenize(t) for t in reviews["text"]]
    own = tfidf_cosine([tokenize(summaries[j]) for j in top], [tokenize(" ".join(texts[j])) for j in top], corpus)
    other = tfidf_cosine([tokenize(summaries[j]) for j in top], [tokenize(" ".join(texts[k])) for k in np.roll(top, 1)],
                         corpus)
    assert own.mean() > other.mean()  # a summary resembles its own item's reviews more than another item's
