"""Per-row Gram matrices for alternating least squares, batched by row degree (issue 15).

An ALS half-sweep solves, for every row ``r`` (a user, or an item), ``(O_r^T O_r + lam I) x_r =
O_r^T y_r + ...`` where ``O_r`` (d_r, K) stacks the fixed factors of the ``d_r`` columns that row
``r`` observed. Rows with the same degree ``d`` have ``O_r`` of the same shape, so their Gram
matrices are one stacked matrix product ``(n_d, K, d) @ (n_d, d, K)`` (BLAS), instead of ``nnz``
outer products of size K x K summed by a sparse product. Rows are grouped once (the grouping
depends only on the observed pattern) and reused for every sweep.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DegreeGroups:
    """The observed entries of each row, grouped by the row's degree.

    Attributes
    ----------
    n_rows : int
        Number of rows (rows without entries get a zero Gram matrix).
    groups : list of (rows, entries)
        For each distinct degree ``d > 0``: ``rows`` (n_d,) the row ids of that degree and
        ``entries`` (n_d, d) the positions, in the original entry arrays, of each row's entries
        (in their original order).
    """

    n_rows: int
    groups: list[tuple[np.ndarray, np.ndarray]]

    @classmethod
    def build(cls, rows: np.ndarray, n_rows: int) -> "DegreeGroups":
        """Group the entries whose row index is ``rows`` (n,) into rows of ``n_rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= n_rows):
            raise ValueError(f"row index out of range for n_rows={n_rows}")
        order = np.argsort(rows, kind="stable")  # (n,) entries grouped by row
        degree = np.bincount(rows, minlength=n_rows)  # (n_rows,)
        start = np.concatenate([[0], np.cumsum(degree)[:-1]])  # (n_rows,) first position in `order`
        groups = []
        for d in np.unique(degree[degree > 0]):
            ids = np.flatnonzero(degree == d)  # (n_d,)
            groups.append((ids, order[start[ids, None] + np.arange(d)[None, :]]))  # (n_d,), (n_d, d)
        return cls(int(n_rows), groups)


def gram_and_rhs(groups: DegreeGroups, cols: np.ndarray, vals: np.ndarray, other: np.ndarray,
                 chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-row ``sum_j o_j o_j^T`` and ``sum_j v_j o_j`` over each row's observed entries.

    Parameters
    ----------
    groups : DegreeGroups
        The entries grouped by row (:meth:`DegreeGroups.build` on the entries' row indices).
    cols : (n,) int array
        Column of each entry (a row of ``other``).
    vals : (n,) float array
        Value of each entry (the regression target).
    other : (n_cols, K) array
        The fixed factors.
    chunk : int, optional
        At most about this many entries are gathered at once (default: ~4M floats' worth).

    Returns
    -------
    gram : (n_rows, K, K) array
    rhs : (n_rows, K) array
    """
    k = other.shape[1]
    chunk = chunk or max(1024, 4_000_000 // k)
    gram = np.zeros((groups.n_rows, k, k))
    rhs = np.zeros((groups.n_rows, k))
    for ids, entries in groups.groups:
        d = entries.shape[1]
        step = max(1, chunk // d)  # rows per block
        for s in range(0, len(ids), step):
            e = entries[s:s + step]  # (c, d)
            O = other[cols[e]]  # (c, d, K)
            Ot = O.transpose(0, 2, 1)  # (c, K, d)
            gram[ids[s:s + step]] = Ot @ O  # (c, K, K)
            rhs[ids[s:s + step]] = (Ot @ vals[e][:, :, None])[:, :, 0]  # (c, K)
    return gram, rhs
