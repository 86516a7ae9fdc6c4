"""Simple top-k ranking baselines: MostPop and BPR-MF.

Interface (the registry's :class:`~xrec_core.models.registry.Ranker`)::

    model = BPR(k=50).fit(Interactions(likes), Interactions(valid_likes))   # xrec_core.data.feedback
    model.score(np.array([0, 1]))           # -> (2, n_items) scores
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.feedback import Interactions
from ..metrics.ranking import mean_over_users, recall_at_k, topk_items
from ..search_space import Int, LogFloat
from .registry import RANKING, register


def validation_recall(model: Any, train: Interactions, users: np.ndarray, relevant: list[np.ndarray], k: int) -> float:
    """Mean Recall@``k`` of ``model.score`` over ``users`` against their held-out ``relevant`` items.

    Each user's training likes are excluded from the ranking (the early-stopping value of the rankers).
    """
    chunk = 1024  # users scored at once against every item
    top = np.concatenate([topk_items(model.score(users[s:s + chunk]), k, exclude=train.likes[users[s:s + chunk]])
                          for s in range(0, len(users), chunk)])
    return mean_over_users(recall_at_k(top, relevant, k))


@register("MostPop", role=RANKING, search_space={},
          source="item popularity")
class MostPop:
    """Score every item by its number of training interactions (the same list for every user; ``valid`` is not read)."""

    def fit(self, train: Interactions, valid: Interactions | None = None) -> "MostPop":
        self.popularity_ = np.asarray(train.likes.sum(axis=0)).ravel().astype(float)
        return self

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Scores (len(users), n_items), or of the candidate ``items`` (len(users), C) per user."""
        if items is not None:
            return self.popularity_[np.asarray(items)]
        return np.tile(self.popularity_, (len(users), 1))


@register("BPR", role=RANKING, search_space={"k": Int(8, 128, log=True), "lr": LogFloat(1e-3, 0.2), "reg": LogFloat(1e-5, 1e-1)},
          source="Rendle et al. 2009")
class BPR:
    """Bayesian personalized ranking with matrix factorization (Rendle et al. 2009).

    Maximizes ``sum ln sigma(x_ui - x_uj) - reg ||theta||^2`` over sampled (user, positive,
    negative) triples with mini-batch SGD; ``x_ui = b_i + p_u . q_i`` (item bias as in cornac's BPR).
    One epoch samples as many triples as there are training interactions. Each mini-batch's
    gradients are computed from the factors at the batch's start and summed into the rows they
    touch (duplicates accumulate); the loop runs compiled (numba, :mod:`._bpr_kernel`), with the
    samples drawn by numpy up front, so a fit is deterministic for ``seed``. With a validation split
    (held-out likes of the same users) training stops after ``patience`` epochs without a higher
    validation Recall@``eval_k`` (training likes excluded from the ranking) and keeps the best factors.

    Parameters
    ----------
    k : int
        Latent dimension.
    lr : float
        SGD learning rate.
    reg : float
        L2 weight.
    epochs : int
        Passes over the number of training interactions.
    batch_size : int
        Triples per update.
    patience : int
        Epochs without a higher validation recall before stopping (only with ``valid``).
    eval_k : int
        Cut-off of the validation recall.
    seed : int
    dtype : {"float32", "float64"}
        Floating type of the factors and of every SGD step (float32 as in cornac's BPR: half the
        memory traffic of the kernel, same ranking quality; float64 equals the numpy formulation to
        1e-12).
    """

    def __init__(self, k: int = 50, lr: float = 0.05, reg: float = 1e-3, epochs: int = 50, batch_size: int = 256,
                 patience: int = 5, eval_k: int = 50, seed: int = 0, dtype: str = "float32") -> None:
        if patience < 1 or eval_k < 1:
            raise ValueError(f"patience and eval_k must be >= 1, got {patience}, {eval_k}")
        if dtype not in ("float32", "float64"):
            raise ValueError(f"BPR: dtype must be 'float32' or 'float64', got {dtype!r}")
        self.k, self.lr, self.reg, self.epochs, self.batch_size, self.seed = k, lr, reg, epochs, batch_size, seed
        self.patience, self.eval_k, self.dtype = patience, eval_k, dtype

    def get_params(self) -> dict[str, Any]:
        return {"k": self.k, "lr": self.lr, "reg": self.reg, "epochs": self.epochs, "batch_size": self.batch_size,
                "patience": self.patience, "eval_k": self.eval_k, "seed": self.seed, "dtype": self.dtype}

    def fit(self, train: Interactions, valid: Interactions | None = None) -> "BPR":
        """Train on the training likes; with ``valid`` (held-out likes), early-stop on its recall.

        ``valid_history_`` holds the validation Recall@``eval_k`` of each epoch.
        """
        from . import _bpr_kernel as kern

        if valid is not None and valid.likes.shape != train.likes.shape:
            raise ValueError(f"valid likes have shape {valid.likes.shape}, expected {train.likes.shape}")
        X = train.likes
        n_users, n_items = X.shape
        rng = np.random.default_rng(self.seed)
        P = rng.normal(0, 0.1, (n_users, self.k)).astype(self.dtype)  # (n_users, K)
        Q = rng.normal(0, 0.1, (n_items, self.k)).astype(self.dtype)  # (n_items, K)
        b = np.zeros(n_items, dtype=self.dtype)  # (n_items,)
        users, pos = X.nonzero()
        n = len(users)
        if n == 0:
            raise ValueError("BPR.fit: no interactions")
        pattern = X.copy()  # the positive entries, sorted column indices, for the negative check
        pattern.sum_duplicates()
        pattern.data = (pattern.data > 0).astype(np.int8)
        pattern.eliminate_zeros()
        pattern.sort_indices()
        indptr, indices = pattern.indptr.astype(np.int64), pattern.indices.astype(np.int64)
        ids = np.int32 if max(n_users, n_items) < 2**31 else np.int64  # half the index traffic in the kernel
        users, pos = users.astype(ids), pos.astype(ids)
        if n_users * n_items <= 8 * kern.BITSET_MAX_BYTES:  # one memory access per check instead of a binary search
            bits = kern.liked_bitset(indptr, indices, n_items)

            def liked(users_seq: np.ndarray, negs: np.ndarray, which: np.ndarray) -> np.ndarray:
                return kern.is_liked_bitset(bits, n_items, users_seq, negs, which)
        else:
            def liked(users_seq: np.ndarray, negs: np.ndarray, which: np.ndarray) -> np.ndarray:
                return kern.is_liked(indptr, indices, users_seq, negs, which)
        valid_users = np.flatnonzero(np.diff(valid.likes.indptr)) if valid is not None else np.zeros(0, np.int64)
        rows = valid.relevant() if valid is not None else []
        valid_relevant = [rows[u] for u in valid_users]
        self.valid_history_: list[float] = []
        best, best_state, bad = -np.inf, None, 0
        self.P_, self.Q_, self.b_ = P, Q, b  # updated in place by every epoch
        for _ in range(self.epochs):
            order = rng.permutation(n)  # (n,) visiting order of the positives
            users_seq, pos_seq = users[order], pos[order]  # (n,) each, read sequentially by the kernel
            negs = rng.integers(0, n_items, size=n).astype(ids)  # (n,)
            # resample negatives that are positives (a few rounds; leftovers are rare and harmless);
            # a negative that passed a round is not checked again
            bad_at = np.arange(n)  # (m,) positions still to check, increasing
            for _r in range(3):
                bad_at = bad_at[liked(users_seq, negs, bad_at)]
                if not len(bad_at):
                    break
                negs[bad_at] = rng.integers(0, n_items, size=len(bad_at))
            kern.bpr_epoch(P, Q, b, users_seq, pos_seq, negs, float(self.lr), float(self.reg), int(self.batch_size))
            if not len(valid_users):
                continue
            self.valid_history_.append(validation_recall(self, train, valid_users, valid_relevant, self.eval_k))
            if self.valid_history_[-1] > best:
                best, best_state, bad = self.valid_history_[-1], (P.copy(), Q.copy(), b.copy()), 0
            else:
                bad += 1
                if bad >= self.patience:
                    break
        if best_state is not None:
            self.P_, self.Q_, self.b_ = best_state
        return self

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Scores (len(users), n_items), or of the candidate ``items`` (len(users), C) per user."""
        users = np.asarray(users)
        if items is None:
            return self.b_[None, :] + self.P_[users] @ self.Q_.T
        items = np.asarray(items)
        return self.b_[items] + np.einsum("uk,uck->uc", self.P_[users], self.Q_[items])
