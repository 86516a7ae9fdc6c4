"""The compiled / batched kernels of issue 15 equal the implementations they replaced.

Each reference below is the package's previous implementation, kept here (and only here) as the
independent check: BPR's numpy mini-batch SGD with ``np.add.at``, the ALS Gram matrices built
with a sparse selection product / ``np.add.reduceat`` (and a direct per-row solve), and the GRU
encoder over ``PackedSequence``s.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp


# ---------------------------------------------------------------------------------------------- BPR
def _bpr_reference(X: sp.csr_matrix, k: int, lr: float, reg: float, epochs: int, batch_size: int,
                   seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The numpy BPR of ranking_baselines before issue 15 (np.add.at per mini-batch)."""
    X = sp.csr_matrix(X)
    n_users, n_items = X.shape
    rng = np.random.default_rng(seed)
    P = rng.normal(0, 0.1, (n_users, k))
    Q = rng.normal(0, 0.1, (n_items, k))
    b = np.zeros(n_items)
    users, pos = X.nonzero()
    n = len(users)
    for _ in range(epochs):
        order = rng.permutation(n)
        negs = rng.integers(0, n_items, size=n)
        for _r in range(3):
            bad = np.asarray(X[users[order], negs]).ravel() > 0
            if not bad.any():
                break
            negs[bad] = rng.integers(0, n_items, size=int(bad.sum()))
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            u, i, j = users[idx], pos[idx], negs[start:start + batch_size]
            pu, qi, qj = P[u], Q[i], Q[j]
            x = b[i] - b[j] + np.einsum("bk,bk->b", pu, qi - qj)
            g = 1.0 / (1.0 + np.exp(np.clip(x, -30, 30)))
            np.add.at(P, u, lr * (g[:, None] * (qi - qj) - reg * pu))
            np.add.at(Q, i, lr * (g[:, None] * pu - reg * qi))
            np.add.at(Q, j, lr * (-g[:, None] * pu - reg * qj))
            np.add.at(b, i, lr * (g - reg * b[i]))
            np.add.at(b, j, lr * (-g - reg * b[j]))
    return P, Q, b


def _likes(n_users: int, n_items: int, density: float, seed: int) -> sp.csr_matrix:
    X = sp.random(n_users, n_items, density=density, random_state=seed, format="csr")
    X.data[:] = 1.0
    return X


@pytest.mark.parametrize("batch_size, seed, density", [(32, 0, 0.05), (7, 3, 0.3), (1, 1, 0.1), (1000, 2, 0.05)])
def test_bpr_kernel_equals_the_numpy_minibatch_sgd(batch_size, seed, density):
    from xrec_core.models.ranking_baselines import BPR

    # dense rows (density 0.3) force duplicate users/items inside a batch and negative resampling
    X = _likes(60, 40, density, seed)
    m = BPR(k=6, lr=0.05, reg=1e-2, epochs=6, batch_size=batch_size, seed=seed).fit(X)
    P, Q, b = _bpr_reference(X, 6, 0.05, 1e-2, 6, batch_size, seed)
    np.testing.assert_allclose(m.P_, P, rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.Q_, Q, rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.b_, b, rtol=0, atol=1e-12)
    # and a rerun with the same seed gives the same factors bit for bit
    m2 = BPR(k=6, lr=0.05, reg=1e-2, epochs=6, batch_size=batch_size, seed=seed).fit(X)
    assert np.array_equal(m.P_, m2.P_) and np.array_equal(m.Q_, m2.Q_) and np.array_equal(m.b_, m2.b_)


def test_bpr_negative_check_matches_the_sparse_lookup():
    from xrec_core.models._bpr_kernel import is_liked

    X = _likes(30, 20, 0.4, 5)
    X.sort_indices()
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 30, 500), rng.integers(0, 20, 500)
    order = rng.permutation(500)
    which = np.sort(rng.choice(500, 200, replace=False))
    got = is_liked(X.indptr.astype(np.int64), X.indices.astype(np.int64), users, order, items, which)
    want = np.asarray(X[users[order[which]], items[which]]).ravel() > 0
    assert np.array_equal(got, want)
