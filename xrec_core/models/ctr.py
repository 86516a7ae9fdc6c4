"""Collaborative topic regression (Wang & Blei, KDD 2011) and its multi-task variant CTR-MTL.

CTR ties each item's latent vector to its topic proportions: ``v_j = theta_j + eps_j`` with
``eps_j ~ N(0, lambda_v^-1 I)``, ``u_i ~ N(0, lambda_u^-1 I)``, and fits implicit feedback with a
confidence-weighted squared loss (``c_ij = a`` for likes, ``b`` otherwise). With ``theta`` fixed
to LDA's topic proportions (scikit-learn's :class:`~sklearn.decomposition.LatentDirichletAllocation`
on the bag of words), the coordinate updates are closed-form ridge regressions (Wang & Blei,
Eqs. 6-7)::

    u_i = (V C_i V^T + lambda_u I)^-1 V C_i R_i
    v_j = (U C_j U^T + lambda_v I)^-1 (U C_j R_j + lambda_v theta_j)

We keep ``theta`` fixed after LDA (the "CTR with fixed topics" variant Wang & Blei report as
nearly as accurate as the full EM, and much cheaper); this is stated wherever results appear.

Speed: ``V C_i V^T = b V^T V + (a - b) V_{I_i}^T V_{I_i}`` is a shared matrix plus a low-rank term
(one row per like), so each solve uses the Woodbury identity on the shared matrix's inverse:
``O(K^2 |I_i|)`` per user instead of ``O(K^3)``.

CTR-MTL (Bansal, Belanger & McCallum 2016, Sec. 3.3) adds tag prediction with the same item
vectors: tag vectors ``t_g`` and the loss ``lambda * C_R + (1 - lambda) * C_T`` where ``C_T`` is the
same confidence-weighted squared loss on the item-tag matrix. Pass ``tags`` and ``tag_weight``
(the paper's ``lambda``) to fit it.

``fit(train, valid)`` reads the kind of ``train`` (:mod:`xrec_core.data.feedback`): an
:class:`~xrec_core.data.feedback.Interactions` of likes fits implicit feedback as above; a
:class:`~xrec_core.data.feedback.Ratings` of explicit ratings (MT's Table 2 baseline) fits squared
loss on observed ratings only (``a = 1``, ``b = 0``) around the global mean, with the same ``theta``
prior on items. Both take the items' bag of words from ``train.item_bow`` (unless ``theta`` is
given). CTR runs ``max_iter`` ALS sweeps and does not early-stop: ``valid`` is not read (its
precisions are tuned on it by the chapter's study).
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import LatentDirichletAllocation
from ..data.feedback import Interactions, Ratings
from ..progress import tqdm
from ..search_space import LogFloat
from .registry import RANKING, register

log = logging.getLogger(__name__)


def lda_topics(bow: sp.spmatrix, k: int, max_iter: int = 20, seed: int = 0) -> np.ndarray:
    """Topic proportions ``theta`` (n_docs, k) of each row of ``bow`` by variational LDA."""
    lda = LatentDirichletAllocation(n_components=k, max_iter=max_iter, learning_method="online", batch_size=512,
                                    random_state=seed, n_jobs=1)
    theta = lda.fit_transform(sp.csr_matrix(bow))
    return theta / theta.sum(axis=1, keepdims=True)


def _solve_low_rank_update(M: np.ndarray, M_inv: np.ndarray, W: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Solve ``(M + W^T W) x = y`` given ``M`` (K, K), its inverse, ``W`` (s, K) and ``y`` (K,).

    A row with few observations (s <= K) uses the Woodbury identity, an (s, s) solve; a row with
    many (a popular item, a frequent tag) solves the (K, K) system directly, which is cheaper there.
    """
    if len(W) == 0:
        return M_inv @ y
    if len(W) > len(M):
        return np.linalg.solve(M + W.T @ W, y)
    MW = M_inv @ W.T  # (K, s)
    small = np.eye(len(W)) + W @ MW  # (s, s)
    My = M_inv @ y
    return My - MW @ np.linalg.solve(small, W @ My)


def _sweep(rows: sp.csr_matrix, other: np.ndarray, shared: np.ndarray, a: float, b: float,
           prior: np.ndarray | None, prior_weight: float, extra: list[tuple[sp.csr_matrix, np.ndarray, float]] = ()) -> np.ndarray:
    """One block of confidence-weighted ALS updates for every row of ``rows``.

    ``shared`` is the shared part ``b * other^T other (+ ...) + reg I``; ``extra`` adds further
    weighted observation blocks (for CTR-MTL's tags) as (matrix, factors, weight).
    """
    M_inv = np.linalg.inv(shared)
    out = np.empty((rows.shape[0], other.shape[1]))
    scale = np.sqrt(max(a - b, 0.0))
    for r in range(rows.shape[0]):
        cols = rows.indices[rows.indptr[r]:rows.indptr[r + 1]]
        rhs = a * other[cols].sum(axis=0)
        blocks = [scale * other[cols]]
        for mat, fac, weight in extra:
            ecols = mat.indices[mat.indptr[r]:mat.indptr[r + 1]]
            rhs = rhs + weight * a * fac[ecols].sum(axis=0)
            blocks.append(np.sqrt(weight) * scale * fac[ecols])
        if prior is not None:
            rhs = rhs + prior_weight * prior[r]
        out[r] = _solve_low_rank_update(shared, M_inv, np.vstack(blocks), rhs)
    return out


@register("CTR", role=RANKING, search_space={"lambda_u": LogFloat(1e-3, 1.0), "lambda_v": LogFloat(1.0, 1000.0), "b": LogFloat(1e-3, 0.1)},
          source="Wang & Blei 2011")
class CTR:
    """Collaborative topic regression; CTR-MTL when ``tags`` are given.

    Parameters
    ----------
    k : int
        Number of topics = latent dimension (Ask the GRU, Sec. 4.1.2: 200).
    lambda_u, lambda_v : float
        Precisions of the user prior and of the item offset from its topics (0.01 and 100).
    a, b : float
        Confidence of observed likes and of the rest (1 and 0.01).
    max_iter : int
        ALS sweeps.
    lda_iter : int
        LDA iterations for ``theta``.
    tags : scipy.sparse matrix, optional
        (n_items, n_tags) binary item-tag matrix: fits CTR-MTL.
    tag_weight : float
        The paper's ``lambda`` in ``lambda * C_R + (1 - lambda) * C_T``.
    lambda_t : float
        Precision of the tag vectors' prior.
    """

    def __init__(self, k: int = 200, lambda_u: float = 0.01, lambda_v: float = 100.0, a: float = 1.0, b: float = 0.01,
                 max_iter: int = 50, lda_iter: int = 20, tags: sp.spmatrix | None = None, tag_weight: float = 0.5,
                 lambda_t: float = 0.01, seed: int = 0, theta: np.ndarray | None = None, progress: bool = False) -> None:
        self.k, self.lambda_u, self.lambda_v, self.a, self.b = k, lambda_u, lambda_v, a, b
        self.max_iter, self.lda_iter, self.seed = max_iter, lda_iter, seed
        self.tags = sp.csr_matrix(tags) if tags is not None else None
        self.tag_weight, self.lambda_t = tag_weight, lambda_t
        self.theta = theta
        self.progress = progress

    def fit(self, train: Interactions | Ratings, valid: Interactions | Ratings | None = None) -> "CTR":
        """Fit implicit likes (:class:`Interactions`) or explicit ratings (:class:`Ratings`); ``valid`` is not read."""
        if isinstance(train, Ratings):
            return self._fit_ratings(train)
        if not isinstance(train, Interactions):
            raise TypeError(f"CTR fits on Interactions or Ratings, got {type(train).__name__}")
        return self._fit_likes(train)

    def _topics(self, bow: sp.spmatrix | None) -> np.ndarray:
        if self.theta is not None:
            return self.theta
        if bow is None:
            raise ValueError("CTR needs the items' bag of words (train.item_bow) or fixed topics (theta)")
        return lda_topics(bow, self.k, self.lda_iter, self.seed)

    # ------------------------------------------------------------------ implicit feedback
    def _fit_likes(self, train: Interactions) -> "CTR":
        """Fit on a binary (n_users, n_items) like matrix and the items' (n_items, n_words) bag of words."""
        R = sp.csr_matrix(train.likes, dtype=float, copy=True)  # its own copy: binarised below, the caller's is not
        R.data[:] = 1.0
        Rt = R.T.tocsr()
        n_users, n_items = R.shape
        theta = self._topics(train.item_bow)
        if theta.shape != (n_items, self.k):
            raise ValueError(f"theta has shape {theta.shape}, expected ({n_items}, {self.k})")
        rng = np.random.default_rng(self.seed)
        V = theta.copy()
        U = rng.normal(0, 0.01, (n_users, self.k))
        eye = np.eye(self.k)
        lam = 1.0 if self.tags is None else self.tag_weight
        T = None
        if self.tags is not None:
            tags_t = self.tags.T.tocsr()  # (n_tags, n_items)
            T = rng.normal(0, 0.01, (self.tags.shape[1], self.k))
        for _ in tqdm(range(self.max_iter), desc="CTR ALS", disable=not self.progress):
            U = _sweep(R, V, self.b * V.T @ V + self.lambda_u * eye, self.a, self.b, None, 0.0)
            if T is None:
                V = _sweep(Rt, U, self.b * U.T @ U + self.lambda_v * eye, self.a, self.b, theta, self.lambda_v)
            else:
                # item rows see users (weight lambda) and tags (weight 1 - lambda); scale so the
                # rating block keeps weight lambda: divide the whole item objective by lambda.
                w = (1.0 - lam) / lam
                shared = self.b * (U.T @ U + w * T.T @ T) + (self.lambda_v / lam) * eye
                V = _sweep(Rt, U, shared, self.a, self.b, theta, self.lambda_v / lam, extra=[(self.tags, T, w)])
                T = _sweep(tags_t, V, self.b * V.T @ V + self.lambda_t / (1.0 - lam) * eye, self.a, self.b, None, 0.0)
        self.U_, self.V_, self.theta_, self.T_ = U, V, theta, T
        return self

    def user_vectors(self) -> np.ndarray:
        return self.U_

    def item_vectors(self, cold_items: np.ndarray | None = None) -> np.ndarray:
        """Item vectors; cold-start items (no training like) use ``theta`` alone (Wang & Blei, Eq. 9)."""
        V = self.V_.copy()
        if cold_items is not None and len(cold_items):
            V[np.asarray(cold_items)] = self.theta_[np.asarray(cold_items)]
        return V

    def score(self, users: np.ndarray, items: np.ndarray | None = None, cold_items: np.ndarray | None = None) -> np.ndarray:
        """Scores (len(users), n_items), or of the candidate ``items`` (len(users), C) per user."""
        V = self.item_vectors(cold_items)
        U = self.U_[np.asarray(users)]
        if items is None:
            return U @ V.T
        return np.einsum("uk,uck->uc", U, V[np.asarray(items)])

    def score_tags(self, item_ids: np.ndarray, cold_items: np.ndarray | None = None) -> np.ndarray:
        """CTR-MTL tag scores (len(item_ids), n_tags)."""
        if self.T_ is None:
            raise ValueError("score_tags needs a CTR fitted with tags (CTR-MTL)")
        return self.item_vectors(cold_items)[np.asarray(item_ids)] @ self.T_.T

    # ------------------------------------------------------------------ explicit ratings
    def _fit_ratings(self, train: Ratings) -> "CTR":
        """Fit explicit ratings: squared loss on observed pairs (``a = 1``, ``b = 0``) around the mean."""
        users, items, ratings, n_users, n_items = train.users, train.items, train.ratings, train.n_users, train.n_items
        self.mu_ = float(ratings.mean())
        resid = ratings - self.mu_
        R = sp.csr_matrix((resid, (users, items)), shape=(n_users, n_items))
        Rt = R.T.tocsr()
        theta = self._topics(train.item_bow)
        V = theta.copy()
        U = np.random.default_rng(self.seed).normal(0, 0.01, (n_users, self.k))
        eye = np.eye(self.k)
        for _ in tqdm(range(self.max_iter), desc="CTR ALS (ratings)", disable=not self.progress):
            U = _ratings_sweep(R, V, self.lambda_u * eye, None, 0.0)
            V = _ratings_sweep(Rt, U, self.lambda_v * eye, theta, self.lambda_v)
        self.U_, self.V_, self.theta_, self.T_ = U, V, theta, None
        return self

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users, items = np.asarray(users), np.asarray(items)
        known = (users < len(self.U_)) & (items < len(self.V_))
        u, i = np.where(known, users, 0), np.where(known, items, 0)
        return self.mu_ + np.where(known, np.einsum("nk,nk->n", self.U_[u], self.V_[i]), 0.0)


def _ratings_sweep(rows: sp.csr_matrix, other: np.ndarray, reg: np.ndarray, prior: np.ndarray | None,
                   prior_weight: float) -> np.ndarray:
    """Ridge regression per row on its observed entries only: ``(X^T X + reg) w = X^T y (+ prior)``."""
    M_inv = np.linalg.inv(reg)
    out = np.empty((rows.shape[0], other.shape[1]))
    for r in range(rows.shape[0]):
        lo, hi = rows.indptr[r], rows.indptr[r + 1]
        cols, vals = rows.indices[lo:hi], rows.data[lo:hi]
        rhs = other[cols].T @ vals
        if prior is not None:
            rhs = rhs + prior_weight * prior[r]
        out[r] = _solve_low_rank_update(reg, M_inv, other[cols], rhs)
    return out
