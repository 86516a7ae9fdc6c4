"""Simple baselines against closed forms and planted structure; early stopping on the validation split."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from xrec_core.data.feedback import Interactions, Ratings
from xrec_core.models.rating_baselines import PMF, BiasedMF, GlobalMean, UserItemBias
from xrec_core.models.ranking_baselines import BPR, MostPop


def _triples(n_users=30, n_items=25, k=3, density=0.5, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    P, Q = rng.normal(size=(n_users, k)), rng.normal(size=(n_items, k))
    mask = rng.random((n_users, n_items)) < density
    u, i = np.nonzero(mask)
    r = 3.0 + (P @ Q.T)[u, i] + noise * rng.normal(size=len(u))
    return u, i, r, n_users, n_items


def test_user_item_bias_converges_to_the_joint_ridge_solution():
    u, i, r, nu, ni = _triples(seed=1)
    reg = 2.0
    model = UserItemBias(reg=reg, n_iter=500).fit(Ratings(u, i, r, nu, ni))
    # independent computation: the normal equations of the joint ridge problem in [b_u, b_i]
    X = np.zeros((len(r), nu + ni))
    X[np.arange(len(r)), u] = 1
    X[np.arange(len(r)), nu + i] = 1
    y = r - r.mean()
    w = np.linalg.solve(X.T @ X + reg * np.eye(nu + ni), X.T @ y)
    np.testing.assert_allclose(np.r_[model.bu_, model.bi_], w, atol=1e-6)


def test_global_mean():
    u, i, r, nu, ni = _triples()
    assert GlobalMean().fit(Ratings(u, i, r, nu, ni)).predict(u[:3], i[:3]) == pytest.approx([r.mean()] * 3)


def test_mf_recovers_a_planted_low_rank_matrix():
    model = BiasedMF(k=3, reg=0.01, n_iter=30)
    u, i, r, nu, ni = _triples(density=0.7, seed=2)
    held = np.random.default_rng(0).random(len(r)) < 0.1
    model.fit(Ratings(u[~held], i[~held], r[~held], nu, ni))
    train_mse = np.mean((model.predict(u[~held], i[~held]) - r[~held]) ** 2)
    test_mse = np.mean((model.predict(u[held], i[held]) - r[held]) ** 2)
    baseline = np.mean((r[held] - r[~held].mean()) ** 2)
    assert train_mse < 1e-2
    assert test_mse < 0.1 * baseline


def _logistic_triples(n_users=40, n_items=30, k=3, density=0.7, seed=4):
    """Ratings 1..5 from the PMF model itself: r = 1 + 4 * g(p_u . q_i)."""
    rng = np.random.default_rng(seed)
    P, Q = rng.normal(size=(n_users, k)), rng.normal(size=(n_items, k))
    u, i = np.nonzero(rng.random((n_users, n_items)) < density)
    r = 1.0 + 4.0 / (1.0 + np.exp(-(P @ Q.T)[u, i]))
    r[np.argmin(r)], r[np.argmax(r)] = 1.0, 5.0  # the observed range is the rating scale
    return u, i, r, n_users, n_items


def test_pmf_gradients_match_finite_differences():
    u, i, r, nu, ni = _logistic_triples(n_users=6, n_items=5)
    model = PMF(k=2, lambda_u=0.3, lambda_v=0.05, n_iter=3, seed=1).fit(Ratings(u, i, r, nu, ni))
    grad_p, grad_q = model.gradients(u, i, r)
    eps = 1e-6
    for factors, grad in ((model.P_, grad_p), (model.Q_, grad_q)):
        for idx in [(0, 0), (2, 1), (4, 0)]:
            factors[idx] += eps
            up = model.objective(u, i, r)
            factors[idx] -= 2 * eps
            down = model.objective(u, i, r)
            factors[idx] += eps
            assert grad[idx] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9)


def test_pmf_recovers_its_own_model_and_stays_in_the_rating_range():
    u, i, r, nu, ni = _logistic_triples()
    held = np.random.default_rng(0).random(len(r)) < 0.1
    model = PMF(k=3, lambda_u=1e-4, lambda_v=1e-4, n_iter=600, lr=0.01).fit(Ratings(u[~held], i[~held], r[~held], nu, ni))
    assert model.history_[-1] < 1e-3 * model.history_[0]
    test_mse = np.mean((model.predict(u[held], i[held]) - r[held]) ** 2)
    assert test_mse < 0.01 * np.var(r[held])
    pred = model.predict(u, i)
    assert pred.min() >= 1.0 and pred.max() <= 5.0


def test_biased_mf_is_deterministic_and_handles_unknown_ids():
    u, i, r, nu, ni = _triples(noise=0.3)
    a = BiasedMF(seed=5).fit(Ratings(u, i, r, nu, ni)).predict(u, i)
    b = BiasedMF(seed=5).fit(Ratings(u, i, r, nu, ni)).predict(u, i)
    np.testing.assert_array_equal(a, b)
    m = BiasedMF().fit(Ratings(u, i, r, nu, ni))
    assert m.predict(np.array([nu + 5]), np.array([0]))[0] == pytest.approx(m.mu_ + m.bi_[0])


def _split(u, i, r, nu, ni, frac=0.2, seed=0, **side):
    held = np.random.default_rng(seed).random(len(r)) < frac
    return Ratings(u[~held], i[~held], r[~held], nu, ni, **side), Ratings(u[held], i[held], r[held], nu, ni)


def test_pmf_early_stops_on_the_validation_mse_and_keeps_the_best_step():
    """Lightly regularized PMF over-fits noisy ratings: it stops, and the factors it keeps are those of a
    plain fit of the best step count (the validation split consumes no random draws)."""
    train, valid = _split(*_logistic_triples(density=0.4, seed=5), frac=0.3)
    noisy = Ratings(train.users, train.items, np.clip(train.ratings + np.random.default_rng(1).normal(0, 1.0, len(train)), 1, 5),
                    train.n_users, train.n_items)
    model = PMF(k=8, lambda_u=1e-4, lambda_v=1e-4, n_iter=400, lr=0.05, patience=5).fit(noisy, valid)
    history = model.valid_history_
    best = int(np.argmin(history)) + 1
    assert len(history) == best + 5 < 400
    assert valid.mse(model.predict(valid.users, valid.items)) == pytest.approx(min(history), rel=1e-12)
    plain = PMF(k=8, lambda_u=1e-4, lambda_v=1e-4, n_iter=best, lr=0.05).fit(noisy)
    np.testing.assert_array_equal(model.P_, plain.P_)
    assert not plain.valid_history_


def test_feedback_containers_reject_bad_input():
    with pytest.raises(ValueError, match="out of range"):
        Ratings(np.array([0, 3]), np.array([0, 1]), np.array([1.0, 2.0]), 3, 2)
    with pytest.raises(ValueError, match="one length"):
        Ratings(np.array([0, 1]), np.array([0]), np.array([1.0, 2.0]), 3, 2)
    with pytest.raises(ValueError, match="item_bow"):
        Ratings(np.array([0]), np.array([0]), np.array([1.0]), 1, 2, item_bow=sp.csr_matrix((3, 4)))
    with pytest.raises(ValueError, match="scipy.sparse"):
        Interactions(np.ones((2, 2)))
    held = Interactions.from_lists(np.array([2, 0]), [np.array([1, 1, 3]), np.array([0])], 3, 4)
    np.testing.assert_array_equal(held.likes.toarray(), [[1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 1]])
    assert [list(r) for r in held.relevant()] == [[0], [], [1, 3]]


def test_interactions_hold_canonical_likes_that_read_only_workers_can_sum():
    """A Ray worker gets shared arrays read-only; scipy sorts a non-canonical matrix in place on its first
    ``sum``, which then crashed (the GRU chapter's CTR and Embed units did). Interactions canonicalise."""
    # row 0's indices unsorted and with a duplicate (0, 2): valid CSR, not canonical
    raw = sp.csr_matrix((np.array([1.0, 1.0, 1.0, 1.0]), np.array([2, 0, 2, 1]), np.array([0, 3, 4])), shape=(2, 3))
    assert not raw.has_canonical_format
    X = Interactions(raw)
    assert X.likes.has_canonical_format and not raw.has_canonical_format  # the caller's matrix is left alone
    for part in (X.likes.data, X.likes.indices, X.likes.indptr):
        part.flags.writeable = False
    np.testing.assert_array_equal(X.likes.sum(axis=1).A1, [3.0, 1.0])  # duplicates summed, nothing written
    np.testing.assert_array_equal(X.likes.toarray(), raw.toarray())


def test_mostpop_counts_and_bpr_ranks_planted_positives_first():
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 30
    # two user groups, each liking its own block of items
    likes = np.zeros((n_users, n_items))
    likes[:20, :15] = rng.random((20, 15)) < 0.6
    likes[20:, 15:] = rng.random((20, 15)) < 0.6
    X = Interactions(sp.csr_matrix(likes))
    pop = MostPop().fit(X)
    np.testing.assert_array_equal(pop.score(np.array([0]))[0], likes.sum(0))
    np.testing.assert_array_equal(pop.score(np.array([0, 1]), np.array([[3, 20], [1, 2]])), likes.sum(0)[[[3, 20], [1, 2]]])
    model = BPR(k=8, lr=0.05, reg=1e-3, epochs=60, seed=0).fit(X)
    s = model.score(np.arange(n_users))
    own = np.where(np.arange(n_users)[:, None] < 20, s[:, :15].mean(1, keepdims=True), s[:, 15:].mean(1, keepdims=True))
    other = np.where(np.arange(n_users)[:, None] < 20, s[:, 15:].mean(1, keepdims=True), s[:, :15].mean(1, keepdims=True))
    assert (own > other).all()
    cand = np.array([[0, 29, 3]] * n_users)
    np.testing.assert_allclose(model.score(np.arange(n_users), cand), np.take_along_axis(s, cand, axis=1), rtol=1e-5)  # float32 factors: matmul and einsum round differently


def test_bpr_early_stops_on_the_validation_recall_and_keeps_the_best_epoch():
    rng = np.random.default_rng(3)
    n_users, n_items = 60, 40
    likes = (rng.random((n_users, n_items)) < 0.15 + 0.5 * (np.arange(n_items) < 8)).astype(float)  # popular block
    held = [np.flatnonzero(row)[:1] for row in likes]
    for u, h in enumerate(held):
        likes[u, h] = 0
    train = Interactions(sp.csr_matrix(likes))
    valid = Interactions.from_lists(np.arange(n_users), held, n_users, n_items)
    model = BPR(k=4, lr=0.3, reg=1e-4, epochs=40, patience=3, eval_k=5, seed=0).fit(train, valid)
    history = model.valid_history_
    best = int(np.argmax(history)) + 1
    assert len(history) == min(best + 3, 40)
    # independent recall of the kept factors: held-out item among the top 5 of the unseen items
    s = model.score(np.arange(n_users))
    s[likes > 0] = -np.inf
    top5 = np.argsort(-s, axis=1, kind="stable")[:, :5]
    users = [u for u in range(n_users) if len(held[u])]
    assert np.mean([held[u][0] in top5[u] for u in users]) == pytest.approx(max(history), abs=1e-12)
    plain = BPR(k=4, lr=0.3, reg=1e-4, epochs=best, seed=0).fit(train)
    np.testing.assert_array_equal(model.P_, plain.P_)


def test_neumf_learns_ratings_and_rankings():
    import torch

    from xrec_core.models.ncf import NCF

    torch.set_num_threads(1)
    u, i, r, nu, ni = _triples(n_users=40, n_items=30, density=0.6, noise=0.1, seed=4)
    model = NCF(k=8, layers=(16, 8), lr=1e-2, epochs=25, batch_size=64, loss="mse", seed=0).fit(Ratings(u, i, r, nu, ni))
    assert model.losses_[-1] < 0.3 * model.losses_[0]
    assert np.mean((model.predict(u, i) - r) ** 2) < 0.5 * np.var(r)
    likes = np.zeros((20, 20))
    likes[:10, :10] = 1
    likes[10:, 10:] = 1
    ranker = NCF(k=4, layers=(8, 4), lr=1e-2, epochs=30, batch_size=32, loss="bpr", seed=0).fit(Interactions(sp.csr_matrix(likes)))
    s = ranker.score(np.arange(20))
    assert s.shape == (20, 20)
    assert (s[:10, :10].mean(1) > s[:10, 10:].mean(1)).all() and (s[10:, 10:].mean(1) > s[10:, :10].mean(1)).all()
    with pytest.raises(TypeError, match="Interactions"):
        ranker.fit(Ratings(u, i, r, nu, ni))


def test_neumf_early_stops_on_the_validation_rmse_and_keeps_the_best_epoch():
    import torch

    from xrec_core.models.ncf import NCF

    torch.set_num_threads(1)
    train, valid = _split(*_triples(n_users=30, n_items=20, density=0.5, noise=1.0, seed=9), frac=0.3)
    seen = []
    model = NCF(k=16, layers=(32, 16), lr=3e-2, epochs=40, batch_size=32, patience=2, loss="mse", seed=0).fit(
        train, valid, on_epoch=lambda e, v: seen.append((e, v)))
    curve = model.curve_
    assert curve.stopped_early and curve.epochs == curve.best_epoch + 2 < 40
    assert seen == list(zip(curve.valid_epochs, curve.valid))
    rmse = float(np.sqrt(valid.mse(model.predict(valid.users, valid.items))))
    assert rmse == pytest.approx(min(curve.valid), rel=1e-6) and curve.best_value == min(curve.valid)
    plain = NCF(k=16, layers=(32, 16), lr=3e-2, epochs=curve.best_epoch, batch_size=32, loss="mse", seed=0).fit(train)
    np.testing.assert_allclose(plain.predict(valid.users, valid.items), model.predict(valid.users, valid.items), rtol=1e-6)


def test_hft_fits_ratings_and_its_topics_explain_the_text():
    import torch

    from xrec_core.models.hft import HFT

    torch.set_num_threads(1)
    u, i, r, nu, ni = _triples(n_users=30, n_items=20, density=0.6, noise=0.1, seed=6)
    rng = np.random.default_rng(0)
    # two kinds of items writing about disjoint vocabularies
    bow = np.zeros((ni, 12))
    bow[: ni // 2, :6] = rng.integers(1, 4, size=(ni // 2, 6))
    bow[ni // 2:, 6:] = rng.integers(1, 4, size=(ni - ni // 2, 6))
    model = HFT(k=3, lambda_text=1.0, epochs=300, seed=0).fit(Ratings(u, i, r, nu, ni, item_bow=sp.csr_matrix(bow)))
    (mse0, ll0), (mse1, ll1) = model.history_[0], model.history_[-1]
    assert mse1 < 0.2 * mse0 and ll1 > ll0
    # per-word log-likelihood beats the uniform model's log(1/12)
    assert ll1 > np.log(1 / 12) + 0.3
    theta = model.topics()
    assert np.allclose(theta.sum(1), 1)
    assert np.mean((model.predict(u, i) - r) ** 2) < 0.3 * np.var(r)
    # early stopping: lightly regularized HFT over-fits noisy ratings; the kept step equals a plain fit that long
    train, valid = _split(*_triples(n_users=30, n_items=20, density=0.5, noise=1.0, seed=7), frac=0.3,
                          item_bow=sp.csr_matrix(bow))
    stopped = HFT(k=6, lambda_text=0.1, reg=1e-4, epochs=300, lr=0.1, patience=5, seed=0).fit(train, valid)
    best = int(np.argmin(stopped.valid_history_)) + 1
    assert len(stopped.valid_history_) == best + 5 < 300
    assert valid.mse(stopped.predict(valid.users, valid.items)) == pytest.approx(min(stopped.valid_history_), rel=1e-9)
    plain = HFT(k=6, lambda_text=0.1, reg=1e-4, epochs=best, lr=0.1, seed=0).fit(train)
    np.testing.assert_allclose(plain.gu_, stopped.gu_, rtol=1e-12)
    with pytest.raises(ValueError, match="item_bow"):
        HFT().fit(Ratings(u, i, r, nu, ni))


def test_ctr_updates_equal_direct_weighted_least_squares():
    from xrec_core.models.ctr import CTR

    rng = np.random.default_rng(0)
    n_users, n_items, k = 6, 9, 3
    R = sp.csr_matrix((rng.random((n_users, n_items)) < 0.4).astype(float))
    theta = rng.dirichlet(np.ones(k), size=n_items)
    a, b, lu, lv = 1.0, 0.01, 0.1, 10.0
    model = CTR(k=k, lambda_u=lu, lambda_v=lv, a=a, b=b, max_iter=1, theta=theta, seed=0).fit(Interactions(R))
    # independent computation of one sweep: users from V = theta, then items from those users
    C = np.where(R.toarray() > 0, a, b)
    Rd = R.toarray()
    U = np.stack([np.linalg.solve(theta.T @ np.diag(C[i]) @ theta + lu * np.eye(k), theta.T @ (C[i] * Rd[i])) for i in range(n_users)])
    V = np.stack([np.linalg.solve(U.T @ np.diag(C[:, j]) @ U + lv * np.eye(k), U.T @ (C[:, j] * Rd[:, j]) + lv * theta[j])
                  for j in range(n_items)])
    np.testing.assert_allclose(model.U_, U, atol=1e-8)
    np.testing.assert_allclose(model.V_, V, atol=1e-8)
    cold = np.array([2])
    np.testing.assert_allclose(model.item_vectors(cold)[2], theta[2])


@pytest.mark.parametrize("n_obs", [0, 2, 4, 40])
def test_ctr_row_solve_is_exact_with_few_and_with_many_observations(n_obs):
    from xrec_core.models.ctr import _solve_low_rank_update

    rng = np.random.default_rng(n_obs)
    k = 4
    A = rng.normal(size=(k, k))
    M = A @ A.T + np.eye(k)
    W, y = rng.normal(size=(n_obs, k)), rng.normal(size=k)
    x = _solve_low_rank_update(M, np.linalg.inv(M), W, y)
    np.testing.assert_allclose(x, np.linalg.solve(M + W.T @ W, y), rtol=1e-9, atol=1e-12)


def test_ctr_mtl_item_update_weighs_ratings_and_tags():
    from xrec_core.models.ctr import CTR

    rng = np.random.default_rng(1)
    n_users, n_items, n_tags, k = 5, 7, 4, 3
    R = sp.csr_matrix((rng.random((n_users, n_items)) < 0.5).astype(float))
    Tg = sp.csr_matrix((rng.random((n_items, n_tags)) < 0.5).astype(float))
    theta = rng.dirichlet(np.ones(k), size=n_items)
    a, b, lu, lv, lt, lam = 1.0, 0.01, 0.1, 10.0, 0.1, 0.7
    model = CTR(k=k, lambda_u=lu, lambda_v=lv, a=a, b=b, max_iter=1, theta=theta, tags=Tg, tag_weight=lam,
                lambda_t=lt, seed=0).fit(Interactions(R))
    # reproduce the sweep: U from theta, then V minimizing lam*C_R + (1-lam)*C_T + lv*||v - theta||^2 with T at init
    T0 = np.random.default_rng(0)
    T0.normal(0, 0.01, (n_users, k))  # the user init draw comes first
    T_init = T0.normal(0, 0.01, (n_tags, k))
    Cr, Ct = np.where(R.toarray() > 0, a, b), np.where(Tg.toarray() > 0, a, b)
    U = np.stack([np.linalg.solve(theta.T @ np.diag(Cr[i]) @ theta + lu * np.eye(k), theta.T @ (Cr[i] * R.toarray()[i])) for i in range(n_users)])
    V = np.stack([np.linalg.solve(lam * U.T @ np.diag(Cr[:, j]) @ U + (1 - lam) * T_init.T @ np.diag(Ct[j]) @ T_init + lv * np.eye(k),
                                  lam * U.T @ (Cr[:, j] * R.toarray()[:, j]) + (1 - lam) * T_init.T @ (Ct[j] * Tg.toarray()[j]) + lv * theta[j])
                  for j in range(n_items)])
    T = np.stack([np.linalg.solve((1 - lam) * V.T @ np.diag(Ct[:, g]) @ V + lt * np.eye(k), (1 - lam) * V.T @ (Ct[:, g] * Tg.toarray()[:, g]))
                  for g in range(n_tags)])
    np.testing.assert_allclose(model.V_, V, atol=1e-8)
    np.testing.assert_allclose(model.T_, T, atol=1e-8)
    assert model.score_tags(np.arange(n_items)).shape == (n_items, n_tags)


def test_ctr_explicit_ratings_mode_beats_the_mean():
    from xrec_core.models.ctr import CTR

    u, i, r, nu, ni = _triples(density=0.7, noise=0.1, seed=8)
    theta = np.random.default_rng(0).dirichlet(np.ones(3), size=ni)
    m = CTR(k=3, lambda_u=0.01, lambda_v=0.01, max_iter=30, theta=theta).fit(Ratings(u, i, r, nu, ni))
    assert np.mean((m.predict(u, i) - r) ** 2) < 0.2 * np.var(r)
    with pytest.raises(ValueError, match="bag of words"):
        CTR(k=3).fit(Ratings(u, i, r, nu, ni))
