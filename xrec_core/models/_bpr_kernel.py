"""Compiled (numba) inner loops of :class:`xrec_core.models.ranking_baselines.BPR`.

Why numba: BPR's SGD is sequential. Our mini-batch update computes every triple's gradient from
the factors as they were at the start of its batch, then adds the batch's updates into the rows
they touch; batch ``t + 1`` reads the factors batch ``t`` wrote, so the loop over batches cannot be
vectorized without changing the algorithm. Inside a batch the numpy version scattered the
updates with ``np.add.at`` (duplicate rows accumulate), which costs about 74% of a fit; a compiled
loop does the same gather / scatter-add in a few nanoseconds a number, as cornac's Cython BPR does
per sample. The samples (permutation, negatives) are drawn with numpy before each compiled call,
so a fit is deterministic for a seed and equal to the numpy formulation up to floating-point
rounding.

What made it reach cornac (CiteULike-t, K=50, one thread): the time goes to cache misses on the
rows of ``P`` and ``Q`` (10 MB of float64 item factors), not to arithmetic. Factors in float32, as
cornac keeps them, halve that traffic; the triples are gathered into visiting order by numpy before
the call (int32 where the ids fit), so that the loop reads them sequentially instead of through
a permutation. Together about 1.3x on the kernel.
"""

from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError as exc:  # pragma: no cover - numba is a declared dependency
    raise ImportError("xrec's BPR needs numba (a dependency of xrec: `pip install 'numba>=0.61,<0.69'` "
                      "or reinstall with `pip install -e .`)") from exc


# reassoc/contract let LLVM vectorize the K-long dot products and fuse multiply-adds; results move
# by rounding only (1e-15 relative per step in float64) and stay the same from run to run on one machine.
@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def bpr_epoch(P: np.ndarray, Q: np.ndarray, b: np.ndarray, users: np.ndarray, pos: np.ndarray, neg: np.ndarray,
              lr: float, reg: float, batch_size: int) -> None:
    """One epoch of mini-batch BPR SGD, in place on ``P`` (n_users, K), ``Q`` (n_items, K), ``b`` (n_items,).

    The epoch visits the triples ``(users[t], pos[t], neg[t])`` for t = 0..n-1 (all (n,), already in
    visiting order, so that the loop reads them sequentially). ``P``, ``Q`` and ``b`` share one
    floating dtype, in which every step is computed (float32 as in cornac's BPR, or float64). For each
    batch of ``batch_size`` triples, with ``x = b_i - b_j + p_u . (q_i - q_j)`` and ``g = sigma(-x)``
    from the batch-start factors (``x`` clipped to [-30, 30]):

    * ``p_u += lr (g (q_i - q_j) - reg p_u)``, ``q_i += lr (g p_u - reg q_i)``,
      ``q_j += lr (-g p_u - reg q_j)`` (all right-hand sides at batch start, duplicates summed);
    * ``b_i += lr (g - reg b_i)`` with ``b_i`` at batch start, then ``b_j += lr (-g - reg b_j)``
      with ``b_j`` read after the positives' bias step (the order of the original numpy version).
    """
    n = users.shape[0]
    k = P.shape[1]
    one = P.dtype.type(1.0)
    lr_, reg_ = P.dtype.type(lr), P.dtype.type(reg)
    lo, hi = P.dtype.type(-30.0), P.dtype.type(30.0)
    rows = np.empty((batch_size, 3, k), dtype=P.dtype)  # batch-start p_u, q_i, q_j: (B, 3, K)
    g = np.empty(batch_size, dtype=P.dtype)  # (B,)
    b_old = np.empty(batch_size, dtype=P.dtype)  # (B,)
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        for s in range(m):  # gradients from the batch-start factors
            u, i, j = users[start + s], pos[start + s], neg[start + s]
            x = b[i] - b[j]
            for f in range(k):
                pu, qi, qj = P[u, f], Q[i, f], Q[j, f]
                rows[s, 0, f] = pu
                rows[s, 1, f] = qi
                rows[s, 2, f] = qj
                x += pu * (qi - qj)
            x = min(max(x, lo), hi)
            g[s] = one / (one + np.exp(x))  # d ln sigma(x) / dx = sigma(-x)
            b_old[s] = b[i]
        for s in range(m):  # scatter-add the factor updates (duplicate rows accumulate)
            u, i, j = users[start + s], pos[start + s], neg[start + s]
            gs = g[s]
            for f in range(k):
                pu, qi, qj = rows[s, 0, f], rows[s, 1, f], rows[s, 2, f]
                P[u, f] += lr_ * (gs * (qi - qj) - reg_ * pu)
                Q[i, f] += lr_ * (gs * pu - reg_ * qi)
                Q[j, f] += lr_ * (-gs * pu - reg_ * qj)
        for s in range(m):
            i = pos[start + s]
            b[i] += lr_ * (g[s] - reg_ * b_old[s])
        for s in range(m):
            b_old[s] = b[neg[start + s]]
        for s in range(m):
            j = neg[start + s]
            b[j] += lr_ * (-g[s] - reg_ * b_old[s])


BITSET_MAX_BYTES = 64 * 2**20  # a users x items bitset up to this size; beyond it, binary search in the CSR rows


@numba.njit(cache=True, nogil=True)
def liked_bitset(indptr: np.ndarray, indices: np.ndarray, n_items: int) -> np.ndarray:
    """The CSR pattern as a bitset over ``user * n_items + item`` ((n_users * n_items + 7) // 8 bytes)."""
    n_users = indptr.shape[0] - 1
    bits = np.zeros((n_users * n_items + 7) // 8, dtype=np.uint8)
    for u in range(n_users):
        for p in range(indptr[u], indptr[u + 1]):
            key = u * n_items + indices[p]
            bits[key >> 3] |= np.uint8(1 << (key & 7))
    return bits


@numba.njit(cache=True, nogil=True)
def is_liked_bitset(bits: np.ndarray, n_items: int, users: np.ndarray, items: np.ndarray, which: np.ndarray) -> np.ndarray:
    """As :func:`is_liked`, from the bitset of :func:`liked_bitset` (one memory access per check)."""
    out = np.zeros(which.shape[0], dtype=np.bool_)
    for t in range(which.shape[0]):
        w = which[t]
        key = users[w] * n_items + items[w]
        out[t] = (bits[key >> 3] >> (key & 7)) & 1
    return out


@numba.njit(cache=True, nogil=True)
def is_liked(indptr: np.ndarray, indices: np.ndarray, users: np.ndarray, items: np.ndarray, which: np.ndarray) -> np.ndarray:
    """``out[t] = items[w] in row users[w]`` with ``w = which[t]``, for a CSR pattern with sorted columns.

    Binary search in each user's row of ``(indptr, indices)``; returns (len(which),) bools.
    """
    out = np.zeros(which.shape[0], dtype=np.bool_)
    for t in range(which.shape[0]):
        w = which[t]
        u, item = users[w], items[w]
        lo, hi = indptr[u], indptr[u + 1]
        while lo < hi:
            mid = (lo + hi) // 2
            if indices[mid] < item:
                lo = mid + 1
            else:
                hi = mid
        out[t] = lo < indptr[u + 1] and indices[lo] == item
    return out
