"""Ranking all candidate items for many users in chunks, and the reciprocal hit-rank of Sec. 4.2."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch


def topk_from_factors(user_vecs: np.ndarray, item_vecs: np.ndarray, item_bias: np.ndarray, k: int, *,
                      candidates: np.ndarray | None = None, exclude: sp.spmatrix | None = None,
                      chunk: int = 1024) -> np.ndarray:
    """Top-``k`` item ids per user of ``u_i^T f_j + b_j`` (the user bias does not change a ranking).

    Parameters
    ----------
    user_vecs : (n_users, K); item_vecs : (n_items, K); item_bias : (n_items,)
    candidates : int array, optional
        Item ids that may be ranked (cold-start: the test fold's items); default all.
    exclude : (n_users, n_items) sparse, optional
        Items never recommended to a user (their training likes).

    Returns
    -------
    (n_users, min(k, n_candidates)) int array of item ids, best first; ties go to the lower id.
    """
    n_items = item_vecs.shape[0]
    cand = np.arange(n_items) if candidates is None else np.asarray(candidates, dtype=np.int64)
    iv = torch.as_tensor(item_vecs[cand], dtype=torch.float64)  # (C, K)
    ib = torch.as_tensor(item_bias[cand], dtype=torch.float64)  # (C,)
    ex = sp.csr_matrix(exclude)[:, cand].tocsr() if exclude is not None else None
    k = min(k, len(cand))
    out = np.empty((user_vecs.shape[0], k), dtype=np.int64)
    order = np.argsort(cand, kind="stable")  # rank columns by item id for deterministic ties
    iv, ib, cand_sorted = iv[order], ib[order], cand[order]
    if ex is not None:
        ex = ex[:, order].tocsr()
    for start in range(0, user_vecs.shape[0], chunk):
        u = torch.as_tensor(user_vecs[start:start + chunk], dtype=torch.float64)  # (b, K)
        s = u @ iv.T + ib  # (b, C)
        if ex is not None:
            rows, cols = ex[start:start + chunk].nonzero()
            s[torch.as_tensor(rows), torch.as_tensor(cols)] = -torch.inf
        # stable descending sort keeps the lower item id first among equal scores
        idx = torch.sort(-s, dim=1, stable=True).indices[:, :k]  # (b, k)
        out[start:start + chunk] = cand_sorted[idx.numpy()]
    return out


def reciprocal_hit_rank(topk: np.ndarray, relevant: Sequence, k: int = 10) -> np.ndarray:
    """HR@k of Sec. 4.2 per user: ``sum_t 1 / c_t`` over the ranks ``c_t <= k`` of the liked items.

    (Bansal et al. call its mean "average reciprocal Hit-Rank@10".)
    """
    out = np.zeros(len(topk))
    for u, (row, rel) in enumerate(zip(topk, relevant)):
        rel = set(int(i) for i in rel)
        out[u] = sum(1.0 / (r + 1) for r, item in enumerate(row[:k]) if int(item) in rel)
    return out
