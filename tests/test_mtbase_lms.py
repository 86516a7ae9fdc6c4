"""MT chapter language-model baselines: n-gram, skip-gram, LSTM and GCN on planted toy corpora."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from xrec_core.models.gcn import GCN
from xrec_core.models.lstm_lm import LSTMLM
from xrec_core.models.ngram_lm import InterpolatedNgramLM
from xrec_core.models.skipgram_lm import SkipGramLM

torch.set_num_threads(1)

WORDS = "the strap tuner sound cable is great cheap clear broke works well".split()
USER_WORDS = ["amazing", "awful", "decent", "superb"]  # user u ends every review with USER_WORDS[u]


def _corpus(n: int, seed: int):
    """Reviews of random words plus a planted user-specific last word; (docs, users, items)."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, len(USER_WORDS), n)
    items = rng.integers(0, 3, n)
    docs = [list(rng.choice(WORDS, rng.integers(2, 6))) + [USER_WORDS[u]] for u in users]
    return docs, users, items


@pytest.fixture(scope="module")
def data():
    from xrec_core.data.text import Vocabulary

    train, tu, ti = _corpus(240, 0)
    test, su, si = _corpus(60, 1)
    vocab = Vocabulary.build(train, min_freq=1)
    return vocab, (train, tu, ti), (test, su, si)


def _n_outputs(vocab) -> int:
    return len(vocab) - 2  # everything but <PAD> and <BOS> can be predicted


# ------------------------------------------------------------------------- n-gram
def test_uniform_model_perplexity_equals_vocabulary_size(data):
    vocab, (train, _, _), (test, _, _) = data
    lm = InterpolatedNgramLM(vocab, n=3).fit(train)
    lm.weights = np.array([1.0, 0.0, 0.0, 0.0])  # all mass on the uniform component
    assert lm.perplexity(test) == pytest.approx(_n_outputs(vocab), rel=1e-10)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_ngram_distributions_sum_to_one(data, n):
    vocab, (train, _, _), _ = data
    lm = InterpolatedNgramLM(vocab, n=n).fit(train)
    for history in ([], ["the"], ["the", "strap"], ["never-seen", "words"], ["superb"]):
        p = lm.next_distribution(history)
        assert p.shape == (len(vocab),)
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        assert p[vocab.encode(["<PAD>"])[0]] == 0.0 and p[vocab.encode(["<BOS>"])[0]] == 0.0
        assert (p[lm.output_mask] > 0).all()


def test_ngram_probability_matches_hand_counts(data):
    vocab, (train, _, _), _ = data
    lm = InterpolatedNgramLM(vocab, n=3).fit(train)
    seqs = [["<BOS>", "<BOS>"] + d + ["<EOS>"] for d in train]  # every training word is in the vocabulary
    tri, bi, uni = Counter(), Counter(), Counter()
    for s in seqs:
        for k in range(2, len(s)):
            tri[tuple(s[k - 2:k + 1])] += 1
            bi[tuple(s[k - 1:k + 1])] += 1
            uni[s[k]] += 1
    u, v, w = "the", "strap", "is"
    c_uv = sum(c for (a, b, _), c in tri.items() if (a, b) == (u, v))
    c_v = sum(c for (b, _), c in bi.items() if b == v)
    comps = np.array([1 / _n_outputs(vocab), uni[w] / sum(uni.values()), bi[(v, w)] / c_v, tri[(u, v, w)] / c_uv])
    assert c_uv > 0
    expected = comps @ lm.weights  # every history seen: plain Jelinek-Mercer mixture
    assert lm.next_distribution([u, v])[vocab.encode([w])[0]] == pytest.approx(expected, rel=1e-12)
    # vectorised perplexity == product of the per-step distributions
    doc = ["the", "strap", "is", "great"]
    logp = sum(math.log(lm.next_distribution(doc[:k])[vocab.encode([t])[0]])
               for k, t in enumerate(doc + ["<EOS>"]))
    assert lm.perplexity([doc]) == pytest.approx(math.exp(-logp / 5), rel=1e-10)


def test_higher_order_ngrams_fit_the_planted_corpus_better(data):
    vocab, (train, _, _), (test, _, _) = data
    ppl = [InterpolatedNgramLM(vocab, n=n).fit(train).perplexity(test) for n in (1, 2, 3)]
    assert ppl[1] < ppl[0] < _n_outputs(vocab)
    assert ppl[2] <= ppl[1] * 1.02  # trigram data is sparse here; it must not be clearly worse


def test_ngram_generation_is_seeded_and_clean(data):
    vocab, (train, tu, _), _ = data
    lm = InterpolatedNgramLM(vocab, n=3).fit(train)
    a = lm.generate(users=tu[:5], items=None, max_len=7, seed=3)
    assert a == lm.generate(users=tu[:5], items=None, max_len=7, seed=3)
    assert len(a) == 5 and all(len(s) <= 7 for s in a)
    assert all(t in set(WORDS) | set(USER_WORDS) for s in a for t in s)  # no <UNK>, <EOS> or <BOS>


def test_min_len_bars_an_empty_review_the_unigram_would_often_sample():
    from xrec_core.data.text import Vocabulary

    one_word = [[w] for w in WORDS] * 5  # unigram P(<EOS>) = 1/2 at every step, the first included
    lm = InterpolatedNgramLM(Vocabulary.build(one_word, min_freq=1), n=1).fit(one_word)
    free = lm.generate(users=np.zeros(200, int), max_len=5, seed=0)
    assert 70 <= sum(not s for s in free) <= 130  # about half empty
    barred = lm.generate(users=np.zeros(200, int), max_len=5, seed=0, min_len=2)
    assert all(len(s) >= 2 for s in barred)


# ------------------------------------------------------------------------- neural LMs
def test_neural_min_len_bars_eos_before_that_many_words(data):
    vocab, (train, tu, ti), _ = data
    model = LSTMLM(vocab, emb_dim=16, hidden_dim=24, epochs=1).fit(train, users=tu, items=ti)
    with torch.no_grad():  # a model that always ends at once
        model.net.out.weight.zero_()
        model.net.out.bias.zero_()
        model.net.out.bias[vocab.eos_id] = 50.0
    assert all(s == [] for s in model.generate(users=tu[:20], max_len=6, seed=1))
    assert all(len(s) == 3 for s in model.generate(users=tu[:20], max_len=6, seed=1, min_len=3))


def _zero_output(model) -> None:
    layer = model.net.out
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()


@pytest.mark.parametrize("make", [
    lambda v: LSTMLM(v, emb_dim=16, hidden_dim=24, epochs=1),
    lambda v: SkipGramLM(v, dim=8, epochs=1, w2v_epochs=1),
    lambda v: GCN(v, condition="both", cond_dim=4, emb_dim=16, hidden_dim=24, epochs=1),
])
def test_neural_uniform_output_has_vocabulary_size_perplexity(data, make):
    vocab, (train, tu, ti), (test, su, si) = data
    model = make(vocab).fit(train, users=tu, items=ti)
    _zero_output(model)  # equal logits -> uniform over the predictable tokens
    assert model.perplexity(test, users=su, items=si) == pytest.approx(_n_outputs(vocab), rel=1e-6)


def test_training_lowers_perplexity_and_conditioning_helps(data):
    vocab, (train, tu, ti), (test, su, si) = data
    kw = dict(emb_dim=16, hidden_dim=32, epochs=8, patience=8, lr=1e-2, seed=0)
    untrained = LSTMLM(vocab, **{**kw, "epochs": 1, "lr": 1e-9}).fit(train)
    lstm = LSTMLM(vocab, **kw).fit(train)
    gcn_u = GCN(vocab, condition="user", cond_dim=8, **kw).fit(train, users=tu, items=ti)
    gcn_i = GCN(vocab, condition="item", cond_dim=8, **kw).fit(train, users=tu, items=ti)
    p0, p_lstm = untrained.perplexity(test), lstm.perplexity(test)
    p_u, p_i = gcn_u.perplexity(test, users=su, items=si), gcn_i.perplexity(test, users=su, items=si)
    assert p_lstm < 0.8 * p0
    # the last word is a function of the user: knowing the user removes most of its uncertainty
    assert p_u < 0.93 * p_lstm
    assert p_u < p_i  # items carry no planted signal
    assert lstm.curve.train_loss[-1] < lstm.curve.train_loss[0]
    gen = gcn_u.generate(users=np.array([0, 1, 2, 3] * 5), items=None, max_len=8, seed=1)
    assert all(len(s) <= 8 and "<UNK>" not in s for s in gen)
    assert gen == gcn_u.generate(users=np.array([0, 1, 2, 3] * 5), items=None, max_len=8, seed=1)


def test_skipgram_window_averages_the_previous_inputs(data):
    vocab, (train, _, _), (test, _, _) = data
    sg = SkipGramLM(vocab, dim=8, window=3, epochs=2, w2v_epochs=1).fit(train, valid=(test, None, None))
    inp = torch.tensor([[2, 5, 6, 7, 8]])
    feats = sg.net.features(inp)
    emb = sg.net.inp(inp)[0]
    for t in range(5):
        torch.testing.assert_close(feats[0, t], emb[max(0, t - 2):t + 1].mean(0))
    untrained = SkipGramLM(vocab, dim=8, window=3, epochs=1, w2v_epochs=1, lr=1e-9).fit(train, valid=(test, None, None))
    assert sg.perplexity(test) < untrained.perplexity(test)


def test_early_stopping_keeps_the_best_epoch(data):
    vocab, (train, _, _), _ = data
    lm = LSTMLM(vocab, emb_dim=8, hidden_dim=8, epochs=4, valid_frac=0.2, patience=1, lr=1e-2).fit(train)
    assert lm.curve.valid_metric == "validation perplexity" and 1 <= lm.curve.epochs <= 4
    best = min(lm.curve.valid)
    assert lm.curve.best_value == best
    held = [train[k] for k in np.random.default_rng(0).permutation(len(train))[:48]]
    assert lm.perplexity(held) == pytest.approx(best, rel=1e-6)
    # an explicit validation split replaces the internal one; the curve shows what it measured
    _, _, (test, _, _) = data
    lm2 = LSTMLM(vocab, emb_dim=8, hidden_dim=8, epochs=3, patience=1, lr=1e-2).fit(train, valid=(test, None, None))
    assert lm2.perplexity(test) == pytest.approx(lm2.curve.best_value, rel=1e-6)


def test_bad_input_is_rejected(data):
    vocab, (train, tu, ti), _ = data
    with pytest.raises(ValueError, match="condition"):
        GCN(vocab, condition="rating")
    with pytest.raises(ValueError, match="needs users"):
        GCN(vocab, condition="user", epochs=1).fit(train)
    with pytest.raises(TypeError, match="token lists"):
        LSTMLM(vocab).fit(["a plain string", "another"])
    with pytest.raises(ValueError, match="n must be"):
        InterpolatedNgramLM(vocab, n=4)
    gcn = GCN(vocab, condition="user", epochs=1, emb_dim=4, hidden_dim=4, cond_dim=2).fit(train, users=tu, items=ti)
    with pytest.raises(ValueError, match="ids must lie"):
        gcn.perplexity(train[:1], users=[99])
    with pytest.raises(RuntimeError, match="not fitted"):
        LSTMLM(vocab).perplexity(train)
