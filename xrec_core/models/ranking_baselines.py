"""Simple top-k ranking baselines: MostPop and BPR-MF.

Interface (cornac-like)::

    model = BPR(k=50).fit(interactions)      # scipy.sparse CSR, users x items, binary
    model.score(np.array([0, 1]))           # -> (2, n_items) scores
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..metrics.ranking import mean_over_users, recall_at_k, topk_items
from ._tuning import Tuned, expand_grid
from ..search_space import Int, LogFloat
from .registry import RANKING, register


@register("MostPop", role=RANKING, search_space={},
          source="item popularity")
class MostPop:
    """Score every item by its number of training interactions (the same list for every user)."""

    def fit(self, interactions: sp.spmatrix) -> "MostPop":
        self.popularity_ = np.asarray(sp.csr_matrix(interactions).sum(axis=0)).ravel().astype(float)
        return self

    def score(self, user_ids: np.ndarray) -> np.ndarray:
        return np.tile(self.popularity_, (len(user_ids), 1))


@register("BPR", role=RANKING, search_space={"k": Int(8, 128, log=True), "lr": LogFloat(1e-3, 0.2), "reg": LogFloat(1e-5, 1e-1)},
          source="Rendle et al. 2009")
class BPR:
    """Bayesian personalized ranking with matrix factorization (Rendle et al. 2009).

    Maximizes ``sum ln sigma(x_ui - x_uj) - reg ||theta||^2`` over sampled (user, positive,
    negative) triples with mini-batch SGD; ``x_ui = b_i + p_u . q_i`` (item bias as in cornac's BPR).
    One epoch samples as many triples as there are training interactions. Each mini-batch's
    gradients are computed from the factors at the batch's start and summed into the rows they
    touch (duplicates accumulate); the loop runs compiled (numba, :mod:`._bpr_kernel`), with the
    samples drawn by numpy up front, so a fit is deterministic for ``seed``.

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
    dtype : {"float32", "float64"}
        Floating type of the factors and of every SGD step (float32 as in cornac's BPR: half the
        memory traffic of the kernel, same ranking quality; float64 equals the numpy formulation to
        1e-12).
    """

    def __init__(self, k: int = 50, lr: float = 0.05, reg: float = 1e-3, epochs: int = 50, batch_size: int = 256,
                 seed: int = 0, dtype: str = "float32") -> None:
        if dtype not in ("float32", "float64"):
            raise ValueError(f"BPR: dtype must be 'float32' or 'float64', got {dtype!r}")
        self.k, self.lr, self.reg, self.epochs, self.batch_size, self.seed = k, lr, reg, epochs, batch_size, seed
        self.dtype = dtype

    def get_params(self) -> dict[str, Any]:
        return {"k": self.k, "lr": self.lr, "reg": self.reg, "epochs": self.epochs, "batch_size": self.batch_size,
                "seed": self.seed, "dtype": self.dtype}

    def fit(self, interactions: sp.spmatrix) -> "BPR":
        """Train on a binary ``(n_users, n_items)`` interaction matrix (any nonzero counts as a like)."""
        from . import _bpr_kernel as kern

        X = sp.csr_matrix(interactions)
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
        self.P_, self.Q_, self.b_ = P, Q, b
        return self

    def score(self, user_ids: np.ndarray) -> np.ndarray:
        return self.b_[None, :] + self.P_[np.asarray(user_ids)] @ self.Q_.T


DEFAULT_BPR_GRID = {"k": [32, 64], "lr": [0.05], "reg": [1e-4, 1e-2], "epochs": [30]}


def tune_bpr(train: sp.spmatrix, valid_relevant: Sequence[np.ndarray],
             grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]] | None = None, k_eval: int = 50,
             seed: int = 0) -> Tuned:
    """Pick :class:`BPR` settings by validation Recall@``k_eval``; returns ``Tuned(model, params, history)``.

    ``valid_relevant[u]`` holds user ``u``'s held-out validation items (empty for users without any).
    """
    train = sp.csr_matrix(train)
    users = np.array([u for u, r in enumerate(valid_relevant) if len(r)])
    rel = [valid_relevant[u] for u in users]
    history, best = [], None
    for params in expand_grid(grid or DEFAULT_BPR_GRID):
        params = {**{"seed": seed}, **params}
        model = BPR(**params).fit(train)
        top = topk_items(model.score(users), k_eval, exclude=train[users])
        score = mean_over_users(recall_at_k(top, rel, k_eval))
        history.append((params, score))
        if best is None or score > best[2]:
            best = (model, params, score)
    return Tuned(best[0], best[1], history)
