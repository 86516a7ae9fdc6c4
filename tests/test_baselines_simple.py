"""Simple baselines against closed forms and planted structure."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from xrec_core.models.rating_baselines import PMF, BiasedMF, GlobalMean, UserItemBias, tune_biased_mf
from xrec_core.models.ranking_baselines import BPR, MostPop, tune_bpr


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
    model = UserItemBias(reg=reg, n_iter=500).fit(u, i, r, nu, ni)
    # independent computation: the normal equations of the joint ridge problem in [b_u, b_i]
    X = np.zeros((len(r), nu + ni))
    X[np.arange(len(r)), u] = 1
    X[np.arange(len(r)), nu + i] = 1
    y = r - r.mean()
    w = np.linalg.solve(X.T @ X + reg * np.eye(nu + ni), X.T @ y)
    np.testing.assert_allclose(np.r_[model.bu_, model.bi_], w, atol=1e-6)


def test_global_mean():
    u, i, r, nu, ni = _triples()
    assert GlobalMean().fit(u, i, r).predict(u[:3], i[:3]) == pytest.approx([r.mean()] * 3)


def test_mf_recovers_a_planted_low_rank_matrix():
    model = BiasedMF(k=3, reg=0.01, n_iter=30)
    u, i, r, nu, ni = _triples(density=0.7, seed=2)
    held = np.random.default_rng(0).random(len(r)) < 0.1
    model.fit(u[~held], i[~held], r[~held], nu, ni)
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
    model = PMF(k=2, lambda_u=0.3, lambda_v=0.05, n_iter=3, seed=1).fit(u, i, r, nu, ni)
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
    model = PMF(k=3, lambda_u=1e-4, lambda_v=1e-4, n_iter=600, lr=0.01).fit(u[~held], i[~held], r[~held], nu, ni)
    assert model.history_[-1] < 1e-3 * model.history_[0]
    test_mse = np.mean((model.predict(u[held], i[held]) - r[held]) ** 2)
    assert test_mse < 0.01 * np.var(r[held])
    pred = model.predict(u, i)
    assert pred.min() >= 1.0 and pred.max() <= 5.0


def test_biased_mf_is_deterministic_and_handles_unknown_ids():
    u, i, r, nu, ni = _triples(noise=0.3)
    a = BiasedMF(seed=5).fit(u, i, r, nu, ni).predict(u, i)
    b = BiasedMF(seed=5).fit(u, i, r, nu, ni).predict(u, i)
    np.testing.assert_array_equal(a, b)
    m = BiasedMF().fit(u, i, r, nu, ni)
    assert m.predict(np.array([nu + 5]), np.array([0]))[0] == pytest.approx(m.mu_ + m.bi_[0])


def test_tune_biased_mf_picks_the_lowest_validation_error():
    u, i, r, nu, ni = _triples(noise=0.5, seed=3)
    cut = len(r) * 4 // 5
    tuned = tune_biased_mf((u[:cut], i[:cut], r[:cut]), (u[cut:], i[cut:], r[cut:]), grid={"k": [2, 3], "reg": [0.1, 100.0]},
                           n_users=nu, n_items=ni)
    assert len(tuned.history) == 4
    assert tuned.params == min(tuned.history, key=lambda h: h[1])[0]


def test_mostpop_counts_and_bpr_ranks_planted_positives_first():
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 30
    # two user groups, each liking its own block of items
    likes = np.zeros((n_users, n_items))
    likes[:20, :15] = rng.random((20, 15)) < 0.6
    likes[20:, 15:] = rng.random((20, 15)) < 0.6
    X = sp.csr_matrix(likes)
    np.testing.assert_array_equal(MostPop().fit(X).score(np.array([0]))[0], likes.sum(0))
    model = BPR(k=8, lr=0.05, reg=1e-3, epochs=60, seed=0).fit(X)
    s = model.score(np.arange(n_users))
    own = np.where(np.arange(n_users)[:, None] < 20, s[:, :15].mean(1, keepdims=True), s[:, 15:].mean(1, keepdims=True))
    other = np.where(np.arange(n_users)[:, None] < 20, s[:, 15:].mean(1, keepdims=True), s[:, :15].mean(1, keepdims=True))
    assert (own > other).all()
    tuned = tune_bpr(X, [np.array([j]) for j in range(n_users)], grid=[{"k": 4, "epochs": 5}, {"k": 8, "epochs": 5}], k_eval=5)
    assert tuned.params in [h[0] for h in tuned.history]


def test_neumf_learns_ratings_and_rankings():
    import torch

    from xrec_core.models.ncf import NCF

    torch.set_num_threads(1)
    u, i, r, nu, ni = _triples(n_users=40, n_items=30, density=0.6, noise=0.1, seed=4)
    model = NCF(k=8, layers=(16, 8), lr=1e-2, epochs=25, batch_size=64, loss="mse", seed=0).fit(u, i, r, nu, ni)
    assert model.losses_[-1] < 0.3 * model.losses_[0]
    assert np.mean((model.predict(u, i) - r) ** 2) < 0.5 * np.var(r)
    likes = np.zeros((20, 20))
    likes[:10, :10] = 1
    likes[10:, 10:] = 1
    ranker = NCF(k=4, layers=(8, 4), lr=1e-2, epochs=30, batch_size=32, loss="bpr", seed=0).fit(sp.csr_matrix(likes))
    s = ranker.score(np.arange(20))
    assert s.shape == (20, 20)
    assert (s[:10, :10].mean(1) > s[:10, 10:].mean(1)).all() and (s[10:, 10:].mean(1) > s[10:, :10].mean(1)).all()


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
    model = HFT(k=3, lambda_text=1.0, epochs=300, seed=0).fit(u, i, r, sp.csr_matrix(bow), nu, ni)
    (mse0, ll0), (mse1, ll1) = model.history_[0], model.history_[-1]
    assert mse1 < 0.2 * mse0 and ll1 > ll0
    # per-word log-likelihood beats the uniform model's log(1/12)
    assert ll1 > np.log(1 / 12) + 0.3
    theta = model.topics()
    assert np.allclose(theta.sum(1), 1)
    assert np.mean((model.predict(u, i) - r) ** 2) < 0.3 * np.var(r)


def test_ctr_updates_equal_direct_weighted_least_squares():
    from xrec_core.models.ctr import CTR

    rng = np.random.default_rng(0)
    n_users, n_items, k = 6, 9, 3
    R = sp.csr_matrix((rng.random((n_users, n_items)) < 0.4).astype(float))
    theta = rng.dirichlet(np.ones(k), size=n_items)
    a, b, lu, lv = 1.0, 0.01, 0.1, 10.0
    model = CTR(k=k, lambda_u=lu, lambda_v=lv, a=a, b=b, max_iter=1, theta=theta, seed=0).fit(R, None)
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
                lambda_t=lt, seed=0).fit(R, None)
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
    m = CTR(k=3, lambda_u=0.01, lambda_v=0.01, max_iter=30, theta=theta).fit_ratings(u, i, r, None, nu, ni)
    assert np.mean((m.predict(u, i) - r) ** 2) < 0.2 * np.var(r)
