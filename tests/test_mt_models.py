"""Unit tests of the MT model pieces (paper 000): ALS closed form, decoder perplexity, REINFORCE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from xrec_core.models.mt import (ContextAwareMF, DocumentEncoder, MultiTaskModel, ReviewDecoder, ReviewDiscriminator, ReviewSplit,
                                 ReviewTensors, als_update, batch_baseline, monte_carlo_rewards, reinforce_loss,
                                 sequence_log_probs, word2vec_matrix)
from xrec_core.models.mt.trainer import shuffled_entities

torch.set_num_threads(1)


def _ratings(rng, n_users=7, n_items=6, n=25):
    pairs = rng.choice(n_users * n_items, n, replace=False)
    return pairs // n_items, pairs % n_items, rng.integers(1, 6, n).astype(float)


def _eq10(U, V, users, items, r, Ut, Vt, lu, lv):
    err = r - np.sum(U[users] * V[items], axis=1)
    return 0.5 * err @ err + 0.5 * lu * np.sum((U - Ut) ** 2) + 0.5 * lv * np.sum((V - Vt) ** 2)


def test_als_update_equals_direct_least_squares_of_eq10():
    rng = np.random.default_rng(0)
    users, items, r = _ratings(rng)
    n_users, n_items, k, lam = 7, 6, 3, 0.7
    V = rng.normal(size=(n_items, k))
    Ut = rng.normal(size=(n_users, k))
    got = als_update(users, items, r, n_users, V, Ut, lam)
    for i in range(n_users):
        # Eq. 10 in U_i alone is the least-squares problem || [V_obs; sqrt(lam) I] x - [R_obs; sqrt(lam) U~_i] ||^2
        obs = users == i
        A = np.vstack([V[items[obs]], math.sqrt(lam) * np.eye(k)])
        b = np.concatenate([r[obs], math.sqrt(lam) * Ut[i]])
        want = np.linalg.lstsq(A, b, rcond=None)[0]
        np.testing.assert_allclose(got[i], want, rtol=1e-9, atol=1e-10)


def test_als_sweep_zeroes_the_gradient_and_never_increases_eq10():
    rng = np.random.default_rng(1)
    users, items, r = _ratings(rng, 8, 9, 40)
    Ut, Vt = rng.normal(size=(8, 4)), rng.normal(size=(9, 4))
    mf = ContextAwareMF(n_factors=4, lambda_u=0.5, lambda_v=2.0, center=False, seed=3).init(users, items, r, 8, 9)
    losses = [_eq10(mf.U, mf.V, users, items, r, Ut, Vt, 0.5, 2.0)]
    for _ in range(5):
        losses.append(mf.sweep(Ut, Vt))
        assert losses[-1] == pytest.approx(_eq10(mf.U, mf.V, users, items, r, Ut, Vt, 0.5, 2.0), rel=1e-12)
    assert all(b <= a + 1e-9 for a, b in zip(losses, losses[1:]))
    # after the V update, the gradient of Eq. 10 w.r.t. V is zero (autograd, independent of the solve)
    U = torch.tensor(mf.U)
    V = torch.tensor(mf.V, requires_grad=True)
    err = torch.tensor(r) - (U[users] * V[items]).sum(1)
    loss = 0.5 * (err ** 2).sum() + 0.5 * 2.0 * ((V - torch.tensor(Vt)) ** 2).sum()
    loss.backward()
    assert float(V.grad.abs().max()) < 1e-9


def test_camf_rejects_bad_input():
    mf = ContextAwareMF(n_factors=2)
    with pytest.raises(ValueError, match="out of range"):
        mf.init(np.array([0, 5]), np.array([0, 1]), np.array([1.0, 2.0]), 3, 2)
    with pytest.raises(ValueError, match="lambda"):
        als_update(np.array([0]), np.array([0]), np.array([1.0]), 1, np.ones((1, 2)), np.zeros((1, 2)), 0.0)
    with pytest.raises(RuntimeError, match="not fitted"):
        mf.predict(np.array([0]), np.array([0]))


def test_uniform_decoder_perplexity_equals_vocabulary_size():
    rng = np.random.default_rng(0)
    vocab, pad, bos, eos = 23, 0, 2, 3
    tokens = rng.integers(4, vocab, (30, 9))
    tokens[:, 6] = eos
    tokens[:, 7:] = pad
    data = ReviewTensors(tokens, rng.integers(0, 5, 30), rng.integers(0, 4, 30), np.ones(30), 5, 4, vocab, pad, bos, eos)
    model = MultiTaskModel(5, 4, vocab, pad_id=pad, bos_id=bos, eos_id=eos, n_factors=4, emb_dim=6, hidden=5,
                           max_epochs=1, patience=1, t_steps=1, g_steps=0, d_steps=1, als_max_sweeps=1, batch_size=8,
                           max_len=8)
    model.fit(ReviewSplit(data, np.arange(18)), ReviewSplit(data, np.arange(18, 20)))
    for dec in model.decoders.values():
        with torch.no_grad():
            dec.out.weight.zero_()
            dec.out.bias.zero_()
    for name in ("U", "I", "P"):
        # the softmax ranges over every token except PAD and BOS, which the decoder never emits
        assert model.decoders[name].n_outputs == vocab - 2
        assert model.perplexity(name, np.arange(20, 30)) == pytest.approx(vocab - 2, rel=1e-6)


def test_decoder_log_likelihood_matches_step_by_step_decoding():
    torch.manual_seed(0)
    dec = ReviewDecoder(11, 4, 6, 3, pad_id=0, banned_ids=(0, 2))
    cond = torch.randn(2, 3)
    targets = torch.tensor([[5, 6, 3, 0], [7, 3, 0, 0]])
    logp, mask = sequence_log_probs(dec, cond, targets, bos_id=2, pad_id=0, eos_id=3)
    for b in range(2):
        h, tok, total = None, torch.tensor([2]), 0.0
        for t in range(int(mask[b].sum())):
            logits, h = dec.step(cond[b:b + 1], tok, h)
            total += float(torch.log_softmax(logits, -1)[0, targets[b, t]].detach())
            tok = targets[b, t:t + 1]
        assert float(logp[b].sum().detach()) == pytest.approx(total, rel=1e-5)
    assert mask.tolist() == [[1, 1, 1, 0], [1, 1, 0, 0]]


def test_sampling_keeps_prefix_never_emits_banned_and_pads_after_eos():
    torch.manual_seed(1)
    dec = ReviewDecoder(9, 4, 6, 2, pad_id=0, banned_ids=(0, 2))
    cond = torch.randn(50, 2)
    prefix = torch.full((50, 2), 5)
    out = dec.sample(cond, 7, bos_id=2, eos_id=3, pad_id=0, prefix=prefix)
    assert out.shape == (50, 7)
    assert torch.equal(out[:, :2], prefix)
    assert not bool((out[:, 2:] == 2).any())
    for row in out.tolist():
        if 3 in row:
            assert all(t == 0 for t in row[row.index(3) + 1:])
        else:
            assert 0 not in row


def test_sampling_bars_eos_before_min_len():
    torch.manual_seed(1)
    dec = ReviewDecoder(9, 4, 6, 2, pad_id=0, banned_ids=(0, 2))
    with torch.no_grad():  # a decoder that ends at once
        dec.out.bias[3] = 50.0
    cond = torch.randn(30, 2)
    assert bool((dec.sample(cond, 6, bos_id=2, eos_id=3, pad_id=0)[:, 0] == 3).all())
    for greedy in (False, True):
        out = dec.sample(cond, 6, bos_id=2, eos_id=3, pad_id=0, min_len=2, greedy=greedy)
        assert not bool((out[:, :2] == 3).any()) and bool((out[:, 2] == 3).all())


def test_reinforce_gradient_is_unbiased_on_a_toy_bandit():
    """Monte Carlo mean of the Eq. 3 estimator vs. the exact gradient p * (r - J) of J = sum_a p_a r_a."""
    torch.manual_seed(0)
    theta = torch.tensor([0.3, -0.5, 1.0, 0.0], requires_grad=True)
    reward = torch.tensor([1.0, 0.2, -0.4, 0.7])
    p = torch.softmax(theta, 0).detach()
    exact = p * (reward - (p * reward).sum())
    n = 200_000
    for baseline in ("const", "batch"):
        actions = torch.multinomial(p, n, replacement=True)
        logp = torch.log_softmax(theta, 0)[actions][:, None]                     # (n, 1)
        r = reward[actions][:, None]
        mask = torch.ones(n, 1)
        b = 0.35 if baseline == "const" else batch_baseline(r, mask)
        theta.grad = None
        reinforce_loss(logp, r, b, mask).backward()
        mc = -theta.grad                                                          # ascent direction = estimate of grad J
        # per-sample standard error of the estimator, for a 5-sigma bound
        one_hot = torch.nn.functional.one_hot(actions, 4).float()
        adv = (r - (b if isinstance(b, float) else b)).squeeze(1)
        per = (one_hot - p) * adv[:, None]
        se = per.std(0) / math.sqrt(n)
        assert torch.all((mc - exact).abs() <= 5 * se + 1e-6), (baseline, mc, exact, se)
    # the estimator is not trivially zero
    assert float(exact.abs().max()) > 0.05


def test_monte_carlo_rewards_average_rollouts_and_use_final_reward_at_the_end():
    seqs = torch.tensor([[5, 6, 3, 0], [6, 3, 0, 0]])
    mask = (seqs != 0).float()
    calls = []

    def complete(prefix):  # deterministic completion: fill with token 5 then EOS at the end
        calls.append(prefix.shape[1])
        out = torch.full((2, 4), 5)
        out[:, :prefix.shape[1]] = prefix
        return out

    def reward(s):  # fraction of token-5s among the 4 positions
        return (s == 5).float().mean(1)

    r = monte_carlo_rewards(seqs, mask, complete, reward, n_rollouts=2)
    # row 0: t=1 prefix [5] -> [5,5,5,5] = 1.0; t=2 prefix [5,6] -> [5,6,5,5] = 0.75; t=3 final [5,6,3,0] = 0.25
    # row 1: t=1 prefix [6] -> [6,5,5,5] = 0.75; t=2 is its last token -> final [6,3,0,0] = 0.0
    expected = torch.tensor([[1.0, 0.75, 0.25, 0.0], [0.75, 0.0, 0.0, 0.0]])
    assert torch.allclose(r, expected)
    assert sorted(calls) == [1, 1, 2, 2]
    # stride 2: only the length-2 prefix is rolled out; step 1 takes the next evaluated estimate
    calls.clear()
    r2 = monte_carlo_rewards(seqs, mask, complete, reward, n_rollouts=1, stride=2)
    assert torch.allclose(r2, torch.tensor([[0.75, 0.75, 0.25, 0.0], [0.0, 0.0, 0.0, 0.0]]))
    assert calls == [2]


def test_document_encoder_averages_padding_invariant_review_vectors():
    torch.manual_seed(0)
    enc = DocumentEncoder(12, 5, 6, pad_id=0)
    tokens = torch.tensor([[4, 5, 6, 0, 0], [7, 8, 0, 0, 0], [9, 10, 11, 4, 0]])
    lengths = torch.tensor([3, 2, 4])
    docs = enc(tokens, lengths, torch.tensor([0, 0, 2]), 3)
    assert docs.shape == (3, 6)
    single = torch.cat([enc.encode_reviews(tokens[k:k + 1, :lengths[k]], lengths[k:k + 1]) for k in range(3)])
    assert torch.allclose(docs[0], single[:2].mean(0), atol=1e-6)
    assert torch.allclose(docs[2], single[2], atol=1e-6)
    assert torch.equal(docs[1], torch.zeros(6))
    with pytest.raises(ValueError, match="even"):
        DocumentEncoder(12, 5, 7)


def test_discriminator_uses_the_entity_vector():
    torch.manual_seed(0)
    disc = ReviewDiscriminator(10, 4, (3, 2), entity_dim=3, n_filters=4).eval()
    tok = torch.tensor([[4, 5], [4, 5]])                                          # shorter than the widest window
    out = disc(tok, (torch.tensor([0, 1]), torch.tensor([1, 1])))
    assert out.shape == (2,) and not torch.isclose(out[0], out[1])
    with pytest.raises(ValueError, match="entity id tensors"):
        disc(tok, (torch.tensor([0, 1]),))


def test_word2vec_matrix_uses_gensim_vectors_for_seen_words():
    corpus = [["good", "guitar", "strings"], ["bad", "guitar"]] * 5
    itos = ["<PAD>", "<UNK>", "guitar", "zzz"]
    mat = word2vec_matrix(corpus, itos, 8, seed=0, epochs=2)
    assert mat.shape == (4, 8) and mat.dtype == np.float32
    from gensim.models import Word2Vec
    w2v = Word2Vec(sentences=corpus, vector_size=8, window=5, min_count=1, sg=1, workers=1, seed=0, epochs=2)
    np.testing.assert_allclose(mat[2], w2v.wv["guitar"], rtol=1e-6)


def _memorised_reviews(n: int = 120, vocab: int = 15):
    """Reviews of 6 users and 4 items where each user always writes the same review (a decoder conditioned
    on U~ can learn it); the small MultiTaskModel settings; train (90) and validation (10) splits."""
    rng = np.random.default_rng(0)
    user_reviews = rng.integers(4, vocab, (6, 5))
    users = rng.integers(0, 6, n)
    tokens = np.zeros((n, 7), dtype=np.int64)
    tokens[:, :5], tokens[:, 5] = user_reviews[users], 3
    data = ReviewTensors(tokens, users, rng.integers(0, 4, n), rng.integers(1, 6, n).astype(float), 6, 4, vocab, 0, 2, 3)
    kw = dict(pad_id=0, bos_id=2, eos_id=3, n_factors=4, emb_dim=8, hidden=16, t_steps=15, g_steps=1, d_steps=1,
              batch_size=16, doc_sample=3, n_rollouts=1, max_len=7, lr=1e-2, seed=0)
    return data, kw, ReviewSplit(data, np.arange(90)), ReviewSplit(data, np.arange(90, 100))


def test_training_reduces_teacher_forcing_loss_and_ablations_run():
    vocab = 15
    data, kw, train, valid = _memorised_reviews(vocab=vocab)
    m = MultiTaskModel(6, 4, vocab, decoders=("U",), max_epochs=4, patience=4, **kw).fit(train, valid)
    pre = m.curves["generator pre-training"]
    assert pre.epochs == 4 and pre.train_loss[-1] < 0.6 * pre.train_loss[0]
    assert set(m.curves) == {"generator pre-training", "discriminator pre-training", "adversarial training", "rating (ALS)"}
    assert m.perplexity("U", np.arange(100, 120)) < 0.5 * (vocab - 2)
    # the kept state is the best validation epoch: the ALS phase's kept MSE is the model's validation MSE
    assert m.valid_mse() == pytest.approx(m.curves["rating (ALS)"].best_value, rel=1e-12)
    for variant in ("no_encoder", "no_decoder"):
        abl = MultiTaskModel(6, 4, vocab, variant=variant, max_epochs=2, patience=1, **kw).fit(train, valid)
        assert np.isfinite(abl.predict(data.users[100:], data.items[100:])).all()
    with pytest.raises(ValueError, match="validation reviews"):
        MultiTaskModel(6, 4, vocab, **kw).fit(train, ReviewSplit(data, np.arange(0)))
    assert MultiTaskModel(6, 4, vocab, variant="no_decoder", **kw).decoder_names == ()
    with pytest.raises(ValueError, match="Unknown variant"):
        MultiTaskModel(6, 4, vocab, variant="x", **kw)


def test_fit_reports_each_phase_as_it_ends_and_a_capped_phase_stops_a_tuning_fit_at_once():
    from xrec_core.health import NotConverged, require_converged

    vocab = 15
    _, kw, train, valid = _memorised_reviews(vocab=vocab)
    kw["decoders"] = ("U",)
    seen: list[str] = []
    m = MultiTaskModel(6, 4, vocab, max_epochs=2, patience=1, **kw).fit(train, valid, after_phase=lambda c: seen.extend(c))
    assert seen == list(m.curves) == ["generator pre-training", "discriminator pre-training", "adversarial training",
                                      "rating (ALS)"]
    # two epochs of a generator that learns a fixed review per user: still improving at its cap
    capped = MultiTaskModel(6, 4, vocab, max_epochs=2, patience=2, **kw)
    with pytest.raises(NotConverged, match="generator pre-training"):
        capped.fit(train, valid, after_phase=require_converged)
    assert list(capped.curves) == ["generator pre-training"]  # no discriminator or adversarial phase was run


def test_shuffled_entities_keep_the_real_labels_multiset_and_change_every_kept_label():
    rng = np.random.default_rng(3)
    real = rng.choice(8, 200, p=[0.4, 0.2, 0.1, 0.1, 0.1, 0.05, 0.03, 0.02])  # a popular entity, as items are
    swapped, kept = shuffled_entities(real, rng)
    assert kept.all() and (swapped != real).all()
    np.testing.assert_array_equal(np.sort(swapped), np.sort(real))
    # one entity on m = 70 of n = 100 reviews: only the other 30 can take its label, so 2m - n = 40 are dropped
    real = np.array([0] * 70 + [1] * 20 + [2] * 10)
    swapped, kept = shuffled_entities(real, rng)
    assert kept.sum() == 60 and (swapped[kept] != real[kept]).all()
    np.testing.assert_array_equal(np.sort(swapped[kept]), np.sort(real[kept]))


def test_shuffled_label_test_scores_an_item_prior_at_exactly_chance():
    """Sec. 4.3: a discriminator that scores the item alone (a popularity prior) knows nothing of who wrote a review.

    Half the test reviews below are of item 0, which the prior scores as real (the other items as swapped); swapped
    items drawn uniformly from the other items (the test before) would credit the prior with about two thirds."""
    vocab = 15
    data, kw, train, valid = _memorised_reviews(vocab=vocab)
    m = MultiTaskModel(6, 4, vocab, max_epochs=1, patience=1, **kw).fit(train, valid)
    m.discriminator_scores = lambda name, tokens, users, items: (np.asarray(items) == 0).astype(float)
    items = data.items
    rows = np.concatenate([np.flatnonzero(items == 0)[:20], np.flatnonzero(items == 1)[:15], np.flatnonzero(items == 2)[:5]])
    assert m.shuffled_label_test("I", rows, seed=1) == (40, 80)
    with pytest.raises(ValueError, match="user"):
        m.shuffled_label_test("P", rows)


def test_gram_accumulation_is_independent_of_the_chunk_size():
    from xrec_core.models.mt.camf import _gram_and_rhs

    rng = np.random.default_rng(2)
    users, items, r = _ratings(rng, 9, 8, 50)
    V = rng.normal(size=(8, 3))
    g1, b1 = _gram_and_rhs(users, items, r, 9, V, chunk=7)
    g2, b2 = _gram_and_rhs(users, items, r, 9, V, chunk=10_000)
    np.testing.assert_allclose(g1, g2, rtol=1e-12)
    np.testing.assert_allclose(b1, b2, rtol=1e-12)
    # and equal to the explicit per-user sums
    for i in range(9):
        o = V[items[users == i]]
        np.testing.assert_allclose(g1[i], o.T @ o, atol=1e-12)
        np.testing.assert_allclose(b1[i], o.T @ r[users == i], atol=1e-12)
