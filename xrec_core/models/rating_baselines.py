"""Simple rating-prediction baselines: global mean, user + item biases, biased MF and PMF.

The bias models and biased MF fit by alternating least squares with closed-form, vectorized updates
(no learning rate to tune, deterministic given the seed); PMF by full-batch gradient steps, early
stopped on the validation split. Interface (the registry's :class:`~xrec_core.models.registry.RatingPredictor`)::

    train = Ratings(users, items, ratings, n_users, n_items)   # xrec_core.data.feedback
    model = BiasedMF(k=10).fit(train, valid)
    model.predict(users, items)  # -> np.ndarray

Unknown users/items (ids beyond the training range) fall back to the biases / global mean.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.feedback import Ratings
from ._als import DegreeGroups, gram_and_rhs
from ..search_space import Int, LogFloat
from .registry import RATING, register


@register("GlobalMean", role=RATING, search_space={},
          source="training mean")
class GlobalMean:
    """Predict the mean training rating for every pair (``valid`` is not read)."""

    def fit(self, train: Ratings, valid: Ratings | None = None) -> "GlobalMean":
        self.mu_ = float(np.mean(train.ratings))
        return self

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.full(len(users), self.mu_)


@register("UserItemBias", role=RATING, search_space={"reg": LogFloat(0.1, 50.0)},
          source="Koren 2010")
class UserItemBias:
    """``r_ui = mu + b_u + b_i`` with L2-regularized biases, fit by alternating closed-form updates.

    Each update is the exact minimizer of ``sum (r - mu - b_u - b_i)^2 + reg (|b_u|^2 + |b_i|^2)``
    in one block, so the objective decreases monotonically (Koren 2008, Sec. 2.1). A fixed number of
    sweeps, no early stopping: ``valid`` is not read (``reg`` is tuned on it by the chapter's study).
    """

    def __init__(self, reg: float = 5.0, n_iter: int = 20) -> None:
        self.reg = reg
        self.n_iter = n_iter

    def fit(self, train: Ratings, valid: Ratings | None = None) -> "UserItemBias":
        users, items, ratings, n_users, n_items = train.users, train.items, train.ratings, train.n_users, train.n_items
        self.mu_ = float(ratings.mean())
        self.bu_, self.bi_ = np.zeros(n_users), np.zeros(n_items)
        cnt_u = np.bincount(users, minlength=n_users)
        cnt_i = np.bincount(items, minlength=n_items)
        for _ in range(self.n_iter):
            self.bi_ = np.bincount(items, ratings - self.mu_ - self.bu_[users], n_items) / (cnt_i + self.reg)
            self.bu_ = np.bincount(users, ratings - self.mu_ - self.bi_[items], n_users) / (cnt_u + self.reg)
        return self

    def _bias(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users, items = np.asarray(users), np.asarray(items)
        bu = np.where(users < len(self.bu_), self.bu_[np.minimum(users, len(self.bu_) - 1)], 0.0)
        bi = np.where(items < len(self.bi_), self.bi_[np.minimum(items, len(self.bi_) - 1)], 0.0)
        return self.mu_ + bu + bi

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._bias(users, items)


def _als_side(groups: DegreeGroups, cols: np.ndarray, other: np.ndarray, target: np.ndarray, reg: float) -> np.ndarray:
    """Solve, for every row group g, ``(X_g^T X_g + reg I) w_g = X_g^T y_g`` (batched ridge regressions).

    ``X_g`` stacks the rows ``other[cols]`` (d_g, dim) of the group's entries, ``y_g`` their ``target``;
    the Gram matrices are batched by group size (:func:`xrec_core.models._als.gram_and_rhs`).
    Returns (n_groups, dim).
    """
    gram, rhs = gram_and_rhs(groups, cols, target, other)  # (n, dim, dim), (n, dim)
    gram += reg * np.eye(other.shape[1])[None]
    return np.linalg.solve(gram, rhs[..., None])[..., 0]


@register("BiasedMF", role=RATING, search_space={"k": Int(4, 64, log=True), "reg": LogFloat(0.1, 100.0)},
          source="Koren, Bell & Volinsky 2009")
class BiasedMF:
    """Biased matrix factorization ``r_ui = mu + b_u + b_i + p_u . q_i`` (Koren, Bell & Volinsky 2009).

    Fit by alternating least squares: with items fixed, each user's ``[p_u, b_u]`` is a ridge
    regression on features ``[q_i, 1]`` with targets ``r - mu - b_i`` (and symmetrically), solved in
    closed form for all users at once. A fixed number of sweeps, no early stopping: ``valid`` is not
    read (``k`` and ``reg`` are tuned on it by the chapter's study).

    Parameters
    ----------
    k : int
        Latent dimension (cornac's MF default is 10).
    reg : float
        L2 weight on factors and biases.
    n_iter : int
        ALS sweeps.
    init_std : float
        Standard deviation of the random factor initialization.
    """

    def __init__(self, k: int = 10, reg: float = 10.0, n_iter: int = 15, init_std: float = 0.1, seed: int = 0) -> None:
        self.k, self.reg, self.n_iter, self.init_std, self.seed = k, reg, n_iter, init_std, seed

    def get_params(self) -> dict[str, Any]:
        return {"k": self.k, "reg": self.reg, "n_iter": self.n_iter, "init_std": self.init_std, "seed": self.seed}

    def fit(self, train: Ratings, valid: Ratings | None = None) -> "BiasedMF":
        users, items, ratings, n_users, n_items = train.users, train.items, train.ratings, train.n_users, train.n_items
        rng = np.random.default_rng(self.seed)
        self.mu_ = float(ratings.mean())
        P = rng.normal(0, self.init_std, (n_users, self.k))
        Q = rng.normal(0, self.init_std, (n_items, self.k))
        bu, bi = np.zeros(n_users), np.zeros(n_items)
        by_user, by_item = DegreeGroups.build(users, n_users), DegreeGroups.build(items, n_items)
        for _ in range(self.n_iter):
            # each user's [p_u, b_u] regresses r - mu - b_i on the features [q_i, 1] (and symmetrically)
            W = _als_side(by_user, items, np.hstack([Q, np.ones((n_items, 1))]), ratings - self.mu_ - bi[items], self.reg)
            P, bu = W[:, :-1], W[:, -1]
            W = _als_side(by_item, users, np.hstack([P, np.ones((n_users, 1))]), ratings - self.mu_ - bu[users], self.reg)
            Q, bi = W[:, :-1], W[:, -1]
        self.P_, self.Q_, self.bu_, self.bi_ = P, Q, bu, bi
        return self

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users, items = np.asarray(users), np.asarray(items)
        known_u, known_i = users < len(self.bu_), items < len(self.bi_)
        u, i = np.where(known_u, users, 0), np.where(known_i, items, 0)
        dot = np.einsum("nk,nk->n", self.P_[u], self.Q_[i]) * (known_u & known_i)
        return self.mu_ + self.bu_[u] * known_u + self.bi_[i] * known_i + dot


@register("PMF", role=RATING, search_space={"k": Int(4, 64, log=True), "lambda_u": LogFloat(1e-4, 1.0), "lambda_v": LogFloat(1e-4, 1.0), "lr": LogFloat(1e-3, 0.1)},
          source="Salakhutdinov & Mnih 2007")
class PMF:
    """Probabilistic matrix factorization with the logistic link (Salakhutdinov & Mnih, NIPS 2007, Sec. 2).

    Ratings ``1..K`` are mapped to ``t = (r - r_min) / (r_max - r_min)`` in [0, 1] and modelled as
    ``t_ui ~ N(g(p_u . q_i), sigma^2)`` with ``g`` the logistic function, which keeps predictions
    in the rating range; Gaussian priors on ``P`` and ``Q`` give the penalties
    ``lambda_u / 2 ||P||^2`` and ``lambda_v / 2 ||Q||^2`` (defaults: the paper's PMF1,
    ``lambda_u = 0.01``, ``lambda_v = 0.001``). The MAP estimate is found by gradient descent on the
    summed squared error (full-batch RMSprop, see :meth:`fit`). With a validation split, training
    stops after ``patience`` steps without a lower validation MSE and keeps the best factors
    (Salakhutdinov & Mnih also select on a validation set).

    Parameters
    ----------
    k : int
        Latent dimension.
    lambda_u, lambda_v : float
        Prior precisions (penalties) of the user and item factors.
    n_iter : int
        Cap on full-batch steps.
    lr, decay : float
        RMSprop step size and decay of its running squared gradient.
    init_std : float
        Standard deviation of the random factor initialization.
    patience : int
        Steps without a lower validation MSE before stopping (only with ``valid``).
    seed : int
    """

    def __init__(self, k: int = 10, lambda_u: float = 0.01, lambda_v: float = 0.001, n_iter: int = 100,
                 lr: float = 0.01, decay: float = 0.9, init_std: float = 0.01, patience: int = 10, seed: int = 0) -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.k, self.lambda_u, self.lambda_v, self.n_iter = k, lambda_u, lambda_v, n_iter
        self.lr, self.decay, self.init_std, self.patience, self.seed = lr, decay, init_std, patience, seed

    def objective(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray) -> float:
        """The MAP objective (summed squared error on the [0, 1] scale plus the prior penalties)."""
        t = (np.asarray(ratings, dtype=float) - self.r_min_) / self.r_span_
        g = _sigmoid(np.einsum("nk,nk->n", self.P_[users], self.Q_[items]))
        return float(0.5 * np.sum((t - g) ** 2) + 0.5 * self.lambda_u * np.sum(self.P_ ** 2)
                     + 0.5 * self.lambda_v * np.sum(self.Q_ ** 2))

    def gradients(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradients of :meth:`objective` with respect to ``P`` (n_users, k) and ``Q`` (n_items, k)."""
        import scipy.sparse as sp

        t = (np.asarray(ratings, dtype=float) - self.r_min_) / self.r_span_
        g = _sigmoid(np.einsum("nk,nk->n", self.P_[users], self.Q_[items]))  # (n,)
        dz = (g - t) * g * (1.0 - g)  # d objective / d (p_u . q_i), (n,)
        A = sp.csr_matrix((dz, (users, items)), shape=(len(self.P_), len(self.Q_)))  # duplicates are summed
        return A @ self.Q_ + self.lambda_u * self.P_, A.T @ self.P_ + self.lambda_v * self.Q_

    def fit(self, train: Ratings, valid: Ratings | None = None) -> "PMF":
        """Fit on ``train``; with ``valid``, early-stop on its MSE (``valid_history_`` holds it per step)."""
        users, items, ratings, n_users, n_items = train.users, train.items, train.ratings, train.n_users, train.n_items
        rng = np.random.default_rng(self.seed)
        self.mu_ = float(ratings.mean())  # only for unknown ids
        self.r_min_ = float(ratings.min())
        self.r_span_ = max(float(ratings.max()) - self.r_min_, 1e-12)
        self.P_ = rng.normal(0, self.init_std, (n_users, self.k))
        self.Q_ = rng.normal(0, self.init_std, (n_items, self.k))
        # Full-batch RMSprop: each factor's step is scaled by its running gradient size, so users and
        # items with few ratings move as fast as popular ones (the paper's plain momentum needs a
        # step size tuned per dataset; cornac uses RMSprop per rating, we use it per vectorized batch).
        sq_p, sq_q = np.zeros_like(self.P_), np.zeros_like(self.Q_)
        self.history_: list[float] = []
        self.valid_history_: list[float] = []
        best, best_state, bad = np.inf, None, 0
        for _ in range(self.n_iter):
            grad_p, grad_q = self.gradients(users, items, ratings)
            sq_p = self.decay * sq_p + (1 - self.decay) * grad_p ** 2
            sq_q = self.decay * sq_q + (1 - self.decay) * grad_q ** 2
            self.P_ -= self.lr * grad_p / (np.sqrt(sq_p) + 1e-8)
            self.Q_ -= self.lr * grad_q / (np.sqrt(sq_q) + 1e-8)
            self.history_.append(self.objective(users, items, ratings))
            if valid is None:
                continue
            self.valid_history_.append(valid.mse(self.predict(valid.users, valid.items)))
            if self.valid_history_[-1] < best:
                best, best_state, bad = self.valid_history_[-1], (self.P_.copy(), self.Q_.copy()), 0
            else:
                bad += 1
                if bad >= self.patience:
                    break
        if best_state is not None:
            self.P_, self.Q_ = best_state
        return self

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users, items = np.asarray(users), np.asarray(items)
        known = (users < len(self.P_)) & (items < len(self.Q_))
        u, i = np.where(known, users, 0), np.where(known, items, 0)
        scaled = _sigmoid(np.einsum("nk,nk->n", self.P_[u], self.Q_[i]))
        return np.where(known, self.r_min_ + self.r_span_ * scaled, self.mu_)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # numerically stable logistic
