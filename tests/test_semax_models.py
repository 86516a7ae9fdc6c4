"""Unit tests of the SEMAX chapter's models: histories, layers, losses, no use of the target review."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xrec_core.models.registry import RATING, entry
from xrec_core.models.semax import (SEMA, SEMAX, DeepCoNN, ReviewBatch, ReviewCorpus, ReviewSet, TransNets, TransNetsExt,
                                    build_histories)
from xrec_core.models.semax.layers import FactorizationMachine, SequenceLSTM, UserItemAttention, WordLSTM, gather_sequence

torch.set_num_threads(1)


def train_kw(**kw):
    """The training options every model takes (the chapter config supplies them in a run)."""
    base = dict(lr=1e-3, batch_size=64, max_epochs=1, patience=1, weight_decay=0.0, seed=0, device="cpu")
    base.update(kw)
    return base


def fit(model, c, train_idx, valid_idx=None):
    valid_idx = np.arange(len(c))[-20:] if valid_idx is None else valid_idx
    return model.fit(ReviewSet(c, np.asarray(train_idx)), ReviewSet(c, np.asarray(valid_idx)))


def predict(model, c, idx):
    return model.predict(ReviewSet(c, np.asarray(idx)))


def brute_histories(entity, times, max_len):
    out = []
    for i in range(len(entity)):
        earlier = [j for j in range(len(entity)) if entity[j] == entity[i] and times[j] < times[i]]
        earlier.sort(key=lambda j: (times[j], j))
        out.append(earlier[-max_len:] if max_len else earlier)
    return out


def test_histories_hand_case():
    # review:   0  1  2  3  4  5
    entity = [0, 0, 1, 0, 1, 0]
    times = [1, 2, 2, 2, 3, 5]
    h = build_histories(np.array(entity), np.array(times), max_len=0)
    rows = [[j for j in row if j >= 0] for row in h]
    # review 3 shares time 2 with review 1: not visible; review 5 sees 0, 1, 3 in time order
    assert rows == [[], [0], [], [0], [2], [0, 1, 3]]
    h2 = build_histories(np.array(entity), np.array(times), max_len=2)
    assert [[j for j in row if j >= 0] for row in h2] == [[], [0], [], [0], [2], [1, 3]]


def test_histories_match_brute_force():
    rng = np.random.default_rng(3)
    entity = rng.integers(0, 7, 120)
    times = rng.integers(0, 30, 120)
    for max_len in (0, 3):
        h = build_histories(entity, times, max_len)
        assert [[j for j in row if j >= 0] for row in h] == brute_histories(entity, times, max_len)


def test_histories_bad_input():
    with pytest.raises(ValueError, match="same length|1-d"):
        build_histories(np.zeros(3, dtype=int), np.zeros(4, dtype=int), 2)


def make_corpus(n=160, seed=0, L=12, M=5, vocab=40):
    """Synthetic reviews whose rating is carried by a 'sentiment word' and a user bias."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 12, n)
    items = rng.integers(0, 9, n)
    times = np.sort(rng.integers(0, 10_000, n))
    bias = np.linspace(-1, 1, 12)
    ratings = np.clip(np.round(3 + 1.5 * bias[users] + rng.normal(0, 0.3, n)), 1, 5)
    toks = [[int(5 + r)] + list(rng.integers(11, vocab, rng.integers(0, L + 4))) for r in ratings]
    toks[3] = []  # an empty review becomes <UNK>
    return ReviewCorpus.build(users, items, ratings, times, toks, vocab_size=vocab, pad_id=0, unk_id=1,
                              max_review_len=L, max_history=M)


def test_corpus_build_pads_and_truncates():
    c = make_corpus()
    assert c.tokens.shape[1] == 12 and c.lengths.min() >= 1 and c.lengths.max() <= 12
    assert c.tokens[3, 0] == 1 and c.lengths[3] == 1
    for i in range(len(c)):
        assert (c.tokens[i, c.lengths[i]:] == 0).all() and (c.tokens[i, : c.lengths[i]] != 0).all()
    assert c.user_hist.shape[1] <= 5


def test_review_batch_unique_histories():
    c = make_corpus()
    idx = np.array([10, 50, 51, 159])
    b = ReviewBatch.make(c, idx, torch.device("cpu"), with_target=True)
    for k, i in enumerate(idx):
        for hist, ref in ((b.user_hist[k], c.user_hist[i]), (b.item_hist[k], c.item_hist[i])):
            for pos, j in zip(hist.tolist(), ref.tolist()):
                assert (pos < 0) == (j < 0)
                if j >= 0:
                    L = c.lengths[j]
                    assert b.hist_lengths[pos] == L
                    assert b.hist_tokens[pos, :L].tolist() == c.tokens[j, :L].tolist()
    assert b.tokens.shape[0] == 4 and b.lengths.tolist() == c.lengths[idx].tolist()
    ud, idoc = b.history_docs(pad_id=0)
    i = idx[-1]
    expect = np.concatenate([c.tokens[j, : c.tokens.shape[1]] for j in c.user_hist[i] if j >= 0])
    got = ud[-1].numpy()
    assert got[got != 0].tolist() == expect[expect != 0].tolist()


def test_word_lstm_last_state_matches_unpadded_run():
    torch.manual_seed(0)
    enc = WordLSTM(4, 6)
    emb = torch.randn(3, 7, 4)
    lengths = torch.tensor([7, 2, 5])
    states, last = enc(emb, lengths)
    for k in range(3):
        out, (h, _) = enc.lstm(emb[k : k + 1, : lengths[k]])
        assert torch.allclose(last[k], h[-1, 0], atol=1e-6)
        assert torch.allclose(states[k, : lengths[k]], out[0], atol=1e-6)
        assert (states[k, lengths[k]:] == 0).all()


def test_sequence_lstm_empty_history_is_zero():
    torch.manual_seed(0)
    seq_lstm = SequenceLSTM(4, 3)
    table = torch.randn(5, 4)
    index = torch.tensor([[2, 0, -1], [-1, -1, -1], [4, 3, 1]])
    seq, lengths = gather_sequence(table, index)
    assert lengths.tolist() == [2, 0, 3]
    h = seq_lstm(seq, lengths)
    assert (h[1] == 0).all()
    _, (ref, _) = seq_lstm.lstm(table[[2, 0]].unsqueeze(0))
    assert torch.allclose(h[0], ref[-1, 0], atol=1e-6)


def test_attention_weights_sum_to_one_and_skip_padding():
    torch.manual_seed(0)
    att = UserItemAttention(hidden_dim=5, factor_dim=3, attn_dim=4)
    states = torch.randn(4, 6, 5)
    lengths = torch.tensor([6, 1, 3, 4])
    mask = torch.arange(6)[None, :] < lengths[:, None]
    u, v = torch.randn(4, 3), torch.randn(4, 3)
    y, alpha = att(states, mask, u, v)
    assert torch.allclose(alpha.sum(1), torch.ones(4), atol=1e-6)
    assert (alpha[~mask] == 0).all() and (alpha >= 0).all()
    # Eq. 7-9 recomputed by hand for one example
    k = 2
    e = torch.stack([att.w(torch.tanh(att.proj(torch.cat([states[k, t], u[k], v[k]])))).squeeze() for t in range(3)])
    a = torch.exp(e) / torch.exp(e).sum()
    assert torch.allclose(alpha[k, :3], a, atol=1e-6)
    assert torch.allclose(y[k], (a[:, None] * states[k, :3]).sum(0), atol=1e-6)


def test_semax_attention_on_reviews_sums_to_one():
    c = make_corpus()
    m = fit(SEMAX(dim=6, beta=0.4, lam=1.0, **train_kw(batch_size=32, seed=1)), c, np.arange(120))
    alphas = m.attention(c, np.array([0, 3, 100]))
    for a, i in zip(alphas, (0, 3, 100)):
        assert len(a) == c.lengths[i] and abs(a.sum() - 1) < 1e-5


def test_factorization_machine_matches_pairwise_sum():
    torch.manual_seed(0)
    fm = FactorizationMachine(5, 3)
    x = torch.randn(4, 5)
    got = fm(x)
    V, w, w0 = fm.V, fm.linear.weight[0], fm.linear.bias[0]
    for k in range(4):
        pair = sum((V[i] @ V[j]) * x[k, i] * x[k, j] for i in range(5) for j in range(i + 1, 5))
        assert torch.allclose(got[k], w0 + w @ x[k] + pair, atol=1e-5)


def test_semax_loss_is_eq20():
    c = make_corpus()
    m = fit(SEMAX(dim=6, beta=0.3, lam=0.7, **train_kw(seed=2)), c, np.arange(100))
    b = ReviewBatch.make(c, np.arange(20, 50), m.device_, with_target=True)
    target = b.ratings - m.mu_
    with torch.no_grad():
        terms = m.loss_terms(b, target)
        r_uv, z_uv = m.net.recommend(b)
        r_y, z_y, _ = m.net.relate(b)
    l1 = np.mean((target.numpy() - r_uv.numpy()) ** 2)
    l2 = np.mean((target.numpy() - r_y.numpy()) ** 2)
    l3 = np.mean(np.sum((z_y.numpy() - z_uv.numpy()) ** 2, axis=1))
    assert terms["L1"].item() == pytest.approx(l1, rel=1e-5)
    assert terms["L3"].item() == pytest.approx(l3, rel=1e-5)
    assert terms["total"].item() == pytest.approx(0.3 * l1 + 0.7 * (l2 + 0.7 * l3), rel=1e-5)
    with pytest.raises(ValueError, match="beta"):
        SEMAX(dim=6, beta=1.5, lam=1.0, **train_kw())


CNN = dict(emb_dim=6, n_filters=5, window=3, latent=4, fm_k=2, dropout=0.5)
TN = dict(CNN, transform_layers=2, rating_loss="mse")
MODELS = [
    (SEMA, dict(dim=6)),
    (SEMAX, dict(dim=6, beta=0.4, lam=1.0)),
    (DeepCoNN, CNN),
    (TransNets, TN),
    (TransNetsExt, TN),
]


@pytest.mark.parametrize("cls,kw", MODELS, ids=[c.__name__ for c, _ in MODELS])
def test_prediction_never_reads_the_target_review_or_its_future(cls, kw):
    """Leakage check: changing review i and every later review leaves the prediction of i unchanged."""
    c = make_corpus()
    m = fit(cls(**train_kw(batch_size=32), **kw), c, np.arange(110), np.arange(110, 125))
    i = 130
    before = predict(m, c, [i])
    rng = np.random.default_rng(9)
    future = c.times >= c.times[i]
    c.tokens[future] = np.where(c.tokens[future] > 0, rng.integers(2, c.vocab_size, c.tokens[future].shape), 0)
    c.ratings[future] = 5 - c.ratings[future]
    after = predict(m, c, [i])
    assert after == pytest.approx(before, abs=1e-6)


@pytest.mark.parametrize("cls,kw", MODELS, ids=[c.__name__ for c, _ in MODELS])
def test_training_learns_the_signal(cls, kw):
    c = make_corpus(n=400, seed=4)
    train, valid, test = np.arange(280), np.arange(280, 320), np.arange(320, 400)
    y = c.ratings[test]
    base = np.sqrt(np.mean((y - c.ratings[train].mean()) ** 2))
    m = fit(cls(**train_kw(max_epochs=8, patience=8, batch_size=32, lr=1e-2), **kw), c, train, valid)
    err = np.sqrt(np.mean((predict(m, c, test) - y) ** 2))
    assert np.isfinite(err) and m.curve_.epochs == 8 and not m.curve_.stopped_early
    assert min(m.curve_.train_loss[1:]) < m.curve_.train_loss[0]
    if cls in (SEMA, SEMAX, TransNetsExt):  # have user factors: must beat the global mean on a user-bias signal
        assert err < base


def test_early_stopping_restores_best_epoch():
    c = make_corpus(n=300, seed=5)
    m = fit(SEMA(dim=4, **train_kw(max_epochs=6, patience=1, lr=5e-2)), c, np.arange(200), np.arange(200, 240))
    rmses = m.curve_.valid
    assert m.curve_.best_epoch == m.curve_.valid_epochs[int(np.argmin(rmses))]
    pred = predict(m, c, np.arange(200, 240))
    assert np.sqrt(np.mean((pred - c.ratings[200:240]) ** 2)) == pytest.approx(min(rmses), rel=1e-5)


def test_seeded_training_is_deterministic():
    c = make_corpus()
    p1 = predict(fit(SEMAX(dim=4, beta=0.4, lam=1.0, **train_kw(seed=3)), c, np.arange(100)), c, np.arange(100, 160))
    p2 = predict(fit(SEMAX(dim=4, beta=0.4, lam=1.0, **train_kw(seed=3)), c, np.arange(100)), c, np.arange(100, 160))
    np.testing.assert_allclose(p1, p2, atol=1e-6)


def test_predict_before_fit_is_an_error():
    with pytest.raises(RuntimeError, match="fit"):
        predict(SEMA(dim=4, **train_kw()), make_corpus(), np.arange(3))


def test_transnets_rating_loss_choice():
    m = TransNets(**train_kw(), **TN)
    target, pred = torch.tensor([1.0, 5.0, 5.0]), torch.tensor([4.0, 4.0, 4.0])
    assert m._rating_error(target, pred).item() == pytest.approx((9 + 1 + 1) / 3)
    m.rating_loss = "l1"
    assert m._rating_error(target, pred).item() == pytest.approx((3 + 1 + 1) / 3)
    with pytest.raises(ValueError, match="rating_loss"):
        TransNets(**train_kw(), **{**TN, "rating_loss": "huber"})


def test_registry_builds_the_chapter_models_with_search_spaces():
    for name, cls in (("SEMA", SEMA), ("SEMAX", SEMAX), ("DeepCoNN", DeepCoNN), ("TransNets", TransNets),
                      ("TransNets-Ext", TransNetsExt)):
        e = entry(name)
        assert e.role == RATING and e.factory is cls and e.search_space and e.source
