"""ConvMF+ on a planted low-rank case whose item factors are written in the item documents."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xrec_core.data.feedback import Ratings
from xrec_core.models.convmf import ConvMFPlus

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(0)
    n_users, n_items, k = 50, 24, 2
    P, Q = rng.normal(size=(n_users, k)), rng.normal(size=(n_items, k))
    u, i = (a.ravel() for a in np.meshgrid(np.arange(n_users), np.arange(n_items), indexing="ij"))
    r = 3.0 + (P @ Q.T)[u, i] + 0.1 * rng.normal(size=u.size)
    train = rng.random(u.size) < 0.6
    # each item's document repeats words 0-3 according to the signs of its factors
    docs = [list(rng.permutation(np.repeat([int(Q[j, 0] > 0), 2 + int(Q[j, 1] > 0), 4, 5], 10)))
            for j in range(n_items)]
    return (u, i, r, train, docs, n_users, n_items)


def _model(**kw):
    args = dict(n_factors=6, emb_dim=8, max_len=40, n_filters=6, hidden_dim=12, epochs=25, cnn_epochs=1, w2v_epochs=1,
                seed=0)
    return ConvMFPlus(**{**args, **kw})


@pytest.mark.parametrize("center", [False, True])
def test_convmf_beats_the_global_mean(planted, center):
    u, i, r, train, docs, nu, ni = planted
    m = _model(center=center).fit(Ratings(u[train], i[train], r[train], nu, ni, item_docs=docs))
    test = ~train
    mse_model = np.mean((m.predict(u[test], i[test]) - r[test]) ** 2)
    mse_mean = np.mean((r[train].mean() - r[test]) ** 2)
    assert mse_model < 0.6 * mse_mean
    # the objective is monotone enough to have improved from its first value
    assert m.history[-1]["objective"] < m.history[0]["objective"]


def test_unseen_users_fall_back_to_the_training_mean(planted):
    u, i, r, train, docs, nu, ni = planted
    keep = train & (u != 3)
    m = _model(epochs=2).fit(Ratings(u[keep], i[keep], r[keep], nu, ni, item_docs=docs))
    np.testing.assert_allclose(m.predict(np.array([3, 3]), np.array([0, 1])), r[keep].mean())


def test_validation_early_stopping_keeps_the_best_iteration(planted):
    u, i, r, train, docs, nu, ni = planted
    valid = ~train
    m = _model(epochs=6, patience=2).fit(Ratings(u[train], i[train], r[train], nu, ni, item_docs=docs),
                                         Ratings(u[valid], i[valid], r[valid], nu, ni))
    best = min(h["valid_mse"] for h in m.history)
    assert np.mean((m.predict(u[valid], i[valid]) - r[valid]) ** 2) == pytest.approx(best, rel=1e-9)


def test_bad_input_is_rejected(planted):
    u, i, r, train, docs, nu, ni = planted
    with pytest.raises(ValueError, match="one document per item"):
        _model().fit(Ratings(u, i, r, nu, ni, item_docs=docs[:-1]))
    with pytest.raises(ValueError, match="out of range"):
        _model().fit(Ratings(u, i, r, nu - 1, ni, item_docs=docs))
    with pytest.raises(ValueError, match="item_docs"):
        _model().fit(Ratings(u, i, r, nu, ni))
    with pytest.raises(RuntimeError, match="not fitted"):
        ConvMFPlus().predict([0], [0])
