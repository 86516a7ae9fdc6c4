"""Context-aware matrix factorization (Lu, Dong & Smyth, RecSys 2018, Sec. 3.3-3.4).

PMF whose Gaussian priors are centred on the textual features learned from the review
documents (Eqs. 6-7) instead of zero. The MAP objective (Eq. 10) is

    L(U, V) = 1/2 sum_ij I_ij (R_ij - U_i^T V_j)^2 + lambda_U/2 ||U - U~||_F^2 + lambda_V/2 ||V - V~||_F^2

and, with one factor matrix fixed, is quadratic in the other; ALS (Algorithm 1) applies the
closed forms

    U_i = (V I_i V^T + lambda_U I_K)^-1 (V R_i + lambda_U U~_i)      (Eq. 11)
    V_j = (U I_j U^T + lambda_V I_K)^-1 (U R_j + lambda_V V~_j)      (Eq. 12)

to every user (item) at once: the per-row Gram matrices are stacked matrix products over the rows
of each degree (issue 15) and the N (M) K x K systems one batched ``numpy.linalg.solve``.

Choice (the paper is silent): ratings are centred on the training mean before factorization
(``center=True``), the usual PMF practice; with ``center=False`` the model is exactly Eq. 5.
"""

from __future__ import annotations

import numpy as np

from .._als import DegreeGroups, gram_and_rhs


def _gram_and_rhs(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_rows: int, other: np.ndarray,
                  chunk: int | None = None, groups: DegreeGroups | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-row sum_j I_ij o_j o_j^T (n_rows, K, K) and sum_j R_ij o_j (n_rows, K) for the observed triples.

    Rows of equal degree are batched into one stacked matrix product (:mod:`xrec_core.models._als`);
    at most about ``chunk`` ratings are gathered at once, so memory stays bounded. ``groups`` is
    the grouping of ``rows`` (built here when not given).
    """
    groups = groups if groups is not None else DegreeGroups.build(rows, n_rows)
    return gram_and_rhs(groups, cols, vals, other, chunk=chunk)


def als_update(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_rows: int, other: np.ndarray,
               prior: np.ndarray, lam: float, groups: DegreeGroups | None = None) -> np.ndarray:
    """Closed-form update of all row factors given the other side (Eq. 11, or Eq. 12 transposed).

    Parameters
    ----------
    rows, cols, vals : (n,) arrays
        Observed entries: row index (user for Eq. 11), column index, rating.
    n_rows : int
        Number of rows to solve for.
    other : (n_cols, K) array
        The fixed factor matrix (V^T for Eq. 11).
    prior : (n_rows, K) array
        Textual features the rows are regularized toward (U~ for Eq. 11).
    lam : float
        Prior precision ratio lambda = sigma^2 / sigma_U^2.
    groups : DegreeGroups, optional
        ``DegreeGroups.build(rows, n_rows)``, to reuse across sweeps (built here when not given).

    Returns
    -------
    (n_rows, K) array solving ``(O I_i O^T + lam I) x_i = O R_i + lam prior_i`` for every row.
    """
    if lam <= 0:
        raise ValueError(f"lambda must be > 0 for a well-posed ALS update, got {lam}")
    k = other.shape[1]
    gram, rhs = _gram_and_rhs(rows, cols, vals, n_rows, other, groups=groups)
    gram += lam * np.eye(k)[None]
    rhs += lam * prior
    return np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]


class ContextAwareMF:
    """PMF with text-feature priors, fitted by ALS (Eqs. 10-12).

    Parameters
    ----------
    n_factors : int
        Latent dimension D (shared with the seq2seq textual features).
    lambda_u, lambda_v : float
        sigma^2/sigma_U^2 and sigma^2/sigma_V^2 of Eq. 10.
    init_std : float
        Standard deviation of the random initialization of U and V (Algorithm 1).
    center : bool
        Factorize ratings minus the training mean (see the module docstring).
    seed : int
        Initialization seed.
    """

    def __init__(self, n_factors: int = 32, lambda_u: float = 1.0, lambda_v: float = 1.0, init_std: float = 0.1,
                 center: bool = True, seed: int = 0) -> None:
        self.n_factors = n_factors
        self.lambda_u = lambda_u
        self.lambda_v = lambda_v
        self.init_std = init_std
        self.center = center
        self.seed = seed
        self.U: np.ndarray | None = None  # (N, D)
        self.V: np.ndarray | None = None  # (M, D)
        self.mu = 0.0

    def init(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int, n_items: int) -> "ContextAwareMF":
        """Store the training ratings and draw random U, V (first line of Algorithm 1)."""
        users, items, ratings = np.asarray(users, int), np.asarray(items, int), np.asarray(ratings, float)
        if not (len(users) == len(items) == len(ratings)) or len(users) == 0:
            raise ValueError("users, items and ratings must be non-empty arrays of equal length")
        if users.max() >= n_users or items.max() >= n_items or users.min() < 0 or items.min() < 0:
            raise ValueError("user/item index out of range for n_users/n_items")
        rng = np.random.default_rng(self.seed)
        self.mu = float(ratings.mean()) if self.center else 0.0
        self._obs = (users, items, ratings - self.mu)
        self._groups = (DegreeGroups.build(users, n_users), DegreeGroups.build(items, n_items))  # reused every sweep
        self.U = rng.normal(0.0, self.init_std, (n_users, self.n_factors))
        self.V = rng.normal(0.0, self.init_std, (n_items, self.n_factors))
        return self

    def sweep(self, U_text: np.ndarray | None = None, V_text: np.ndarray | None = None) -> float:
        """One ALS sweep: Eq. 11 for every user, then Eq. 12 for every item; returns Eq. 10's loss."""
        users, items, r = self._obs
        U_text = np.zeros_like(self.U) if U_text is None else np.asarray(U_text, float)
        V_text = np.zeros_like(self.V) if V_text is None else np.asarray(V_text, float)
        if U_text.shape != self.U.shape or V_text.shape != self.V.shape:
            raise ValueError(f"text features must have shapes {self.U.shape} and {self.V.shape}")
        self.U = als_update(users, items, r, len(self.U), self.V, U_text, self.lambda_u, groups=self._groups[0])
        self.V = als_update(items, users, r, len(self.V), self.U, V_text, self.lambda_v, groups=self._groups[1])
        return self.loss(U_text, V_text)

    def loss(self, U_text: np.ndarray, V_text: np.ndarray) -> float:
        """Eq. 10 on the training ratings."""
        users, items, r = self._obs
        err = r - np.einsum("nd,nd->n", self.U[users], self.V[items])
        return float(0.5 * err @ err + 0.5 * self.lambda_u * np.sum((self.U - U_text) ** 2)
                     + 0.5 * self.lambda_v * np.sum((self.V - V_text) ** 2))

    def fit(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int, n_items: int,
            U_text: np.ndarray | None = None, V_text: np.ndarray | None = None, n_sweeps: int = 20) -> "ContextAwareMF":
        """Initialize and run ``n_sweeps`` ALS sweeps with fixed text features (zero = plain PMF/ALS)."""
        self.init(users, items, ratings, n_users, n_items)
        for _ in range(n_sweeps):
            self.sweep(U_text, V_text)
        return self

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """mu + U_i^T V_j."""
        if self.U is None:
            raise RuntimeError("ContextAwareMF is not fitted; call fit() or init()+sweep() first")
        return self.mu + np.einsum("nd,nd->n", self.U[np.asarray(users, int)], self.V[np.asarray(items, int)])
