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

from xrec_core.data.feedback import Interactions, Ratings


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


@pytest.mark.parametrize("bitset", [True, False])
@pytest.mark.parametrize("batch_size, seed, density", [(32, 0, 0.05), (7, 3, 0.3), (1, 1, 0.1), (1000, 2, 0.05)])
def test_bpr_kernel_equals_the_numpy_minibatch_sgd(batch_size, seed, density, bitset, monkeypatch):
    from xrec_core.models import _bpr_kernel
    from xrec_core.models.ranking_baselines import BPR

    if not bitset:  # the binary-search path of large matrices
        monkeypatch.setattr(_bpr_kernel, "BITSET_MAX_BYTES", 0)

    # dense rows (density 0.3) force duplicate users/items inside a batch and negative resampling
    X = _likes(60, 40, density, seed)
    m = BPR(k=6, lr=0.05, reg=1e-2, epochs=6, batch_size=batch_size, seed=seed, dtype="float64").fit(Interactions(X))
    P, Q, b = _bpr_reference(X, 6, 0.05, 1e-2, 6, batch_size, seed)
    np.testing.assert_allclose(m.P_, P, rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.Q_, Q, rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.b_, b, rtol=0, atol=1e-12)
    # and a rerun with the same seed gives the same factors bit for bit
    m2 = BPR(k=6, lr=0.05, reg=1e-2, epochs=6, batch_size=batch_size, seed=seed, dtype="float64").fit(Interactions(X))
    assert np.array_equal(m.P_, m2.P_) and np.array_equal(m.Q_, m2.Q_) and np.array_equal(m.b_, m2.b_)


@pytest.mark.parametrize("batch_size, seed", [(32, 0), (1, 1)])
def test_bpr_float32_kernel_follows_the_float64_one(batch_size, seed):
    """The default float32 factors (as cornac's) take the same SGD path as float64 up to float32 rounding."""
    from xrec_core.models.ranking_baselines import BPR

    X = _likes(60, 40, 0.1, seed)
    m = BPR(k=6, lr=0.05, reg=1e-2, epochs=6, batch_size=batch_size, seed=seed).fit(Interactions(X))
    assert m.P_.dtype == m.Q_.dtype == m.b_.dtype == np.float32
    P, Q, b = _bpr_reference(X, 6, 0.05, 1e-2, 6, batch_size, seed)
    np.testing.assert_allclose(m.P_, P, rtol=0, atol=1e-5)
    np.testing.assert_allclose(m.Q_, Q, rtol=0, atol=1e-5)
    np.testing.assert_allclose(m.b_, b, rtol=0, atol=1e-5)
    assert np.abs(m.P_ - P).max() > 0  # computed in float32, not cast at the end


def test_bpr_rejects_an_unknown_dtype():
    from xrec_core.models.ranking_baselines import BPR

    with pytest.raises(ValueError, match="dtype"):
        BPR(dtype="float16")


def test_bpr_negative_check_matches_the_sparse_lookup():
    from xrec_core.models._bpr_kernel import is_liked, is_liked_bitset, liked_bitset

    X = _likes(30, 20, 0.4, 5)
    X.sort_indices()
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 30, 500), rng.integers(0, 20, 500)
    order = rng.permutation(500)
    which = np.sort(rng.choice(500, 200, replace=False))
    users_seq = users[order].astype(np.int32)
    got = is_liked(X.indptr.astype(np.int64), X.indices.astype(np.int64), users_seq, items, which)
    want = np.asarray(X[users[order[which]], items[which]]).ravel() > 0
    assert np.array_equal(got, want)
    bits = liked_bitset(X.indptr.astype(np.int64), X.indices.astype(np.int64), 20)
    assert np.array_equal(is_liked_bitset(bits, 20, users_seq, items, which), want)


# ---------------------------------------------------------------------------------------------- ALS
def _gram_reference(rows, cols, vals, n_rows, other):
    """camf's Gram matrices before issue 15: all outer products summed by a sparse selection product."""
    k = other.shape[1]
    o = other[cols]  # (n, K)
    sel = sp.csr_matrix((np.ones(len(rows)), (rows, np.arange(len(rows)))), shape=(n_rows, len(rows)))
    gram = sel @ (o[:, :, None] * o[:, None, :]).reshape(len(rows), k * k)
    return gram.reshape(n_rows, k, k), sel @ (vals[:, None] * o)


def _als_side_reference(index, other_feats, target, n, reg, dim):
    """BiasedMF's ridge half-step before issue 15 (np.add.reduceat over per-entry outer products)."""
    order = np.argsort(index, kind="stable")
    bounds = np.searchsorted(index[order], np.arange(n + 1))
    X, y = other_feats[order], target[order]
    outer = X[:, :, None] * X[:, None, :]
    starts = np.minimum(bounds[:-1], max(len(X) - 1, 0))
    gram = np.add.reduceat(outer, starts, axis=0)
    rhs = np.add.reduceat(X * y[:, None], starts, axis=0)
    empty = bounds[:-1] == bounds[1:]
    gram[empty] = 0.0
    rhs[empty] = 0.0
    gram += reg * np.eye(dim)[None]
    return np.linalg.solve(gram, rhs[..., None])[..., 0]


def _ratings(rng, n_users, n_items, n):
    # skewed degrees (many distinct group sizes), some users and items without any rating
    users = np.minimum(rng.zipf(1.6, n) - 1, n_users - 2)
    items = rng.integers(0, n_items - 1, n)
    return users, items, rng.normal(3.5, 1.0, n)


@pytest.mark.parametrize("chunk", [None, 5, 64])
def test_degree_batched_gram_equals_the_sparse_sum(chunk):
    from xrec_core.models.mt.camf import _gram_and_rhs

    rng = np.random.default_rng(0)
    users, items, r = _ratings(rng, 40, 30, 600)
    V = rng.normal(size=(30, 5))
    g, b = _gram_and_rhs(users, items, r, 40, V, chunk=chunk)
    g0, b0 = _gram_reference(users, items, r, 40, V)
    np.testing.assert_allclose(g, g0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b, b0, rtol=1e-12, atol=1e-12)
    assert not g[39].any() and not b[39].any()  # a user without ratings


def test_camf_sweeps_equal_the_direct_per_row_solve():
    from xrec_core.models.mt.camf import ContextAwareMF

    rng = np.random.default_rng(1)
    users, items, r = _ratings(rng, 25, 20, 300)
    U_text, V_text = rng.normal(size=(25, 4)), rng.normal(size=(20, 4))
    m = ContextAwareMF(n_factors=4, lambda_u=0.7, lambda_v=1.3, seed=2).init(users, items, r, 25, 20)
    V0 = m.V.copy()
    m.sweep(U_text, V_text)
    rc = r - r.mean()
    for i in range(25):  # Eq. 11 row by row
        o = V0[items[users == i]]
        want = np.linalg.solve(o.T @ o + 0.7 * np.eye(4), o.T @ rc[users == i] + 0.7 * U_text[i])
        np.testing.assert_allclose(m.U[i], want, rtol=1e-10, atol=1e-12)
    for j in range(20):  # Eq. 12 from the new U
        o = m.U[users[items == j]]
        want = np.linalg.solve(o.T @ o + 1.3 * np.eye(4), o.T @ rc[items == j] + 1.3 * V_text[j])
        np.testing.assert_allclose(m.V[j], want, rtol=1e-10, atol=1e-12)


def test_biased_mf_equals_the_reduceat_als():
    from xrec_core.models.rating_baselines import BiasedMF

    rng = np.random.default_rng(3)
    users, items, r = _ratings(rng, 50, 35, 700)
    # the old reduceat version dropped the last rating of the last non-empty row when rows without
    # ratings came after it, so the reference runs on ids whose last user and item have ratings
    users, items = np.append(users, 49), np.append(items, 34)
    r = np.append(r, 4.0)
    m = BiasedMF(k=5, reg=2.0, n_iter=4, seed=4).fit(Ratings(users, items, r, 50, 35))
    rng2 = np.random.default_rng(4)
    mu = r.mean()
    P, Q = rng2.normal(0, 0.1, (50, 5)), rng2.normal(0, 0.1, (35, 5))
    bu, bi = np.zeros(50), np.zeros(35)
    ones = np.ones((len(r), 1))
    for _ in range(4):
        W = _als_side_reference(users, np.hstack([Q[items], ones]), r - mu - bi[items], 50, 2.0, 6)
        P, bu = W[:, :-1], W[:, -1]
        W = _als_side_reference(items, np.hstack([P[users], ones]), r - mu - bu[users], 35, 2.0, 6)
        Q, bi = W[:, :-1], W[:, -1]
    for got, want in ((m.P_, P), (m.Q_, Q), (m.bu_, bu), (m.bi_, bi)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_biased_mf_half_step_is_the_direct_ridge_solve_with_trailing_empty_rows():
    from xrec_core.models._als import DegreeGroups
    from xrec_core.models.rating_baselines import _als_side

    rng = np.random.default_rng(5)
    users, items, r = _ratings(rng, 30, 20, 300)  # users 29 and item 19 have no ratings
    Qa = np.hstack([rng.normal(size=(20, 3)), np.ones((20, 1))])
    W = _als_side(DegreeGroups.build(users, 30), items, Qa, r, 1.5)
    for u in range(30):
        X = Qa[items[users == u]]
        want = np.linalg.solve(X.T @ X + 1.5 * np.eye(4), X.T @ r[users == u])
        np.testing.assert_allclose(W[u], want, rtol=1e-10, atol=1e-12)
    assert not W[29].any()


# ---------------------------------------------------------------------------------------- GRU encoder
def _packed_reference(enc, emb, mask):
    """GRUEncoder.encode_embeddings before issue 15 (PackedSequence through both layers)."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    lengths = mask.sum(1).clamp(min=1).cpu()
    x = enc.drop(emb)
    h1, _ = enc.gru1(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    h1, _ = pad_packed_sequence(h1, batch_first=True, total_length=emb.shape[1])
    h1 = enc.drop1(h1)
    h2, _ = enc.gru2(pack_padded_sequence(h1, lengths, batch_first=True, enforce_sorted=False))
    h2, _ = pad_packed_sequence(h2, batch_first=True, total_length=emb.shape[1])
    h2 = enc.drop2(h2)
    m = mask.unsqueeze(-1).to(h2.dtype)
    return (h2 * m).sum(1) / m.sum(1).clamp(min=1.0)


def _token_batch(rng, n, width, vocab, pad_id=0):
    lengths = rng.integers(1, width + 1, n)
    lengths[0], lengths[1] = width, 1
    tok = np.full((n, width), pad_id, dtype=np.int64)
    for r, L in enumerate(lengths):
        tok[r, :L] = rng.integers(1, vocab, L)
    tok[2, :] = pad_id  # a text without any word
    return tok


@pytest.mark.parametrize("bucket_size", [1, 5, 64])
def test_gru_bucketed_encoder_equals_the_packed_one_with_gradients(bucket_size):
    import torch

    from xrec_core.models.gru.encoders import GRUEncoder

    torch.manual_seed(0)
    enc = GRUEncoder(50, k_w=6, k_h1=5, k_h2=4, bucket_size=bucket_size).double().eval()
    tok = torch.as_tensor(_token_batch(np.random.default_rng(0), 23, 9, 50))
    emb = enc.embed(tok).detach().requires_grad_(True)
    w = torch.randn(23, 4, dtype=torch.float64)

    got = enc.encode_embeddings(emb, enc.mask(tok))
    grads = torch.autograd.grad((got * w).sum(), [emb, *enc.parameters()], allow_unused=True)
    want = _packed_reference(enc, emb, enc.mask(tok))
    grads_ref = torch.autograd.grad((want * w).sum(), [emb, *enc.parameters()], allow_unused=True)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    for g, r in zip(grads, grads_ref):
        if r is None:
            assert g is None or not g.any()
        else:
            torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-11)
    assert not got[2].any()  # a text without words encodes to zero, as before


def test_item_repr_encodes_each_distinct_item_once_and_equals_per_row_encoding():
    import torch

    from xrec_core.models.gru.net import TextRecNet, build_encoder

    torch.manual_seed(1)
    tokens = torch.as_tensor(_token_batch(np.random.default_rng(1), 8, 7, 40))
    net = TextRecNet(build_encoder("gru", 40, k=4, k_h1=3), n_users=5, n_items=8,
                     known=np.array([1, 1, 1, 0, 1, 1, 0, 1], bool)).double().eval()
    with torch.no_grad():
        net.item.weight.normal_()
    items = torch.as_tensor([3, 1, 3, 5, 1, 1, 0, 6])
    calls = []
    hook = net.encoder.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape[0]))
    f, b = net.item_repr(items, tokens[items])
    hook.remove()
    assert calls == [5]  # five distinct items
    g = net.encoder(tokens[items])  # row by row (duplicates encoded again)
    v, b_ref = net.item_specific(items)
    torch.testing.assert_close(f, g + v, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(b, b_ref)
