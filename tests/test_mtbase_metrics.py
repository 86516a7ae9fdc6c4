"""MT chapter text metrics: perplexity and the paper's tf-idf cosine, against hand computations."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest

from xrec_core.metrics.language import perplexity_from_nll, tfidf_cosine


def _independent_tfidf_cosine(gen, ref, corpus):
    """Dict-and-loop re-computation of (1 + ln tf) * ln(N / df), terms outside the corpus dropped."""
    N = len(corpus)
    df = Counter(t for doc in corpus for t in set(doc))

    def vec(doc):
        return {t: (1 + math.log(c)) * math.log(N / df[t]) for t, c in Counter(doc).items() if df[t] > 0}

    a, b = vec(gen), vec(ref)
    dot = sum(a[t] * b.get(t, 0.0) for t in a)
    na, nb = math.sqrt(sum(v * v for v in a.values())), math.sqrt(sum(v * v for v in b.values()))
    return 0.0 if na == 0 or nb == 0 else dot / (na * nb)


def test_perplexity_is_exp_of_mean_nll():
    assert perplexity_from_nll(0.0, 5) == 1.0
    assert perplexity_from_nll(10 * math.log(7.0), 10) == pytest.approx(7.0, rel=1e-12)
    with pytest.raises(ValueError, match="at least one token"):
        perplexity_from_nll(1.0, 0)
    with pytest.raises(ValueError, match="finite"):
        perplexity_from_nll(float("inf"), 3)


def test_tfidf_cosine_hand_computed_case():
    corpus = [["a", "a", "b"], ["b", "c"], ["c"]]  # N = 3, df: a 1, b 2, c 2
    gen, ref = ["a", "b", "b"], ["a", "c"]
    ga, gb = math.log(3), (1 + math.log(2)) * math.log(1.5)
    ra, rc = math.log(3), math.log(1.5)
    expected = ga * ra / (math.hypot(ga, gb) * math.hypot(ra, rc))
    got = tfidf_cosine([gen], [ref], corpus)
    assert got.shape == (1,)
    assert got[0] == pytest.approx(expected, rel=1e-12)
    # a term unseen in the corpus has no idf and is dropped; an idf-0 term (in every doc) too
    assert tfidf_cosine([gen + ["zzz"]], [ref], corpus)[0] == pytest.approx(expected, rel=1e-12)
    assert tfidf_cosine([gen], [ref], corpus + [["a", "b", "c"]])[0] == pytest.approx(
        _independent_tfidf_cosine(gen, ref, corpus + [["a", "b", "c"]]), rel=1e-12)


def test_tfidf_cosine_matches_independent_computation_on_real_reviews(fixtures_dir):
    from xrec_core.data.text import tokenize

    texts = [json.loads(line)["reviewText"] for line in (fixtures_dir / "mtbase" / "reviews_toy.json").open()]
    docs = [tokenize(t) for t in texts]
    corpus, gen, ref = docs[:6], docs[6:] + docs[:1], docs[2:5] + [["nothing", "shared"]]
    got = tfidf_cosine(gen, ref, corpus)
    want = [_independent_tfidf_cosine(g, r, corpus) for g, r in zip(gen, ref)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert got[-1] == 0.0 and (got >= 0).all() and (got <= 1 + 1e-12).all()
    assert tfidf_cosine([docs[0]], [docs[0]], corpus)[0] == pytest.approx(1.0)


def test_tfidf_cosine_rejects_bad_input():
    with pytest.raises(ValueError, match="differ in length"):
        tfidf_cosine([["a"]], [], [["a"]])
    with pytest.raises(ValueError, match="corpus"):
        tfidf_cosine([["a"]], [["a"]], [])
    assert tfidf_cosine([[]], [["a"]], [["a"], ["b"]])[0] == 0.0
