"""Hidden factors as topics, HFT (McAuley & Leskovec, RecSys 2013).

Ratings follow biased MF, ``r_ui = mu + b_u + b_i + gamma_u . gamma_i``; an item's review text is
modelled by a topic mixture tied to its rating factors, ``theta_i = softmax(kappa * gamma_i)``,
with topic-word distributions ``phi_k = softmax(psi_k)``. The objective (their Eq. 7) is

    sum_(u,i) (r_ui - rec(u, i))^2 - lambda_text * sum_i sum_w n_iw log(sum_k theta_ik phi_kw) + reg ||params||^2

The original alternates gradient steps with Gibbs-sampled topic assignments; we maximize the
same objective with the topic assignments marginalized out (the exact mixture likelihood) by
full-batch Adam in torch. That keeps it deterministic and CPU-fast on review sets of this size.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from ..progress import tqdm
from ..search_space import Int, LogFloat
from .registry import RATING, register


@register("HFT", role=RATING, search_space={"k": Int(4, 64, log=True), "lambda_text": LogFloat(1e-3, 10.0), "reg": LogFloat(1e-4, 1.0), "lr": LogFloat(1e-3, 0.2)},
          source="McAuley & Leskovec 2013")
class HFT:
    """HFT with ``k`` factors = topics.

    Parameters
    ----------
    k : int
        Latent factors / topics.
    lambda_text : float
        Weight of the corpus negative log-likelihood (per word, relative to the per-rating loss).
    reg : float
        L2 weight on rating parameters.
    epochs : int
        Full-batch Adam steps.
    lr : float
        Adam learning rate.
    """

    def __init__(self, k: int = 10, lambda_text: float = 0.1, reg: float = 0.01, epochs: int = 300, lr: float = 0.05,
                 seed: int = 0, progress: bool = False) -> None:
        self.k, self.lambda_text, self.reg, self.epochs, self.lr, self.seed, self.progress = k, lambda_text, reg, epochs, lr, seed, progress

    def fit(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, item_docs_bow: sp.spmatrix,
            n_users: int | None = None, n_items: int | None = None) -> "HFT":
        users, items = np.asarray(users), np.asarray(items)
        ratings = np.asarray(ratings, dtype=np.float64)
        n_users = int(n_users or users.max() + 1)
        n_items = int(n_items or items.max() + 1)
        bow = sp.coo_matrix(item_docs_bow)
        if bow.shape[0] != n_items:
            raise ValueError(f"item_docs_bow has {bow.shape[0]} rows, expected n_items={n_items}")
        g = torch.Generator().manual_seed(self.seed)
        f64 = torch.float64
        self.mu_ = float(ratings.mean())
        gu = (0.1 * torch.randn(n_users, self.k, generator=g, dtype=f64)).requires_grad_()
        gi = (0.1 * torch.randn(n_items, self.k, generator=g, dtype=f64)).requires_grad_()
        bu = torch.zeros(n_users, dtype=f64, requires_grad=True)
        bi = torch.zeros(n_items, dtype=f64, requires_grad=True)
        psi = (0.01 * torch.randn(self.k, bow.shape[1], generator=g, dtype=f64)).requires_grad_()
        kappa = torch.ones((), dtype=f64, requires_grad=True)
        u_t, i_t = torch.as_tensor(np.asarray(users, dtype=np.int64)), torch.as_tensor(np.asarray(items, dtype=np.int64))
        r_t = torch.as_tensor(ratings - self.mu_)
        rows, cols = torch.as_tensor(bow.row.astype(np.int64)), torch.as_tensor(bow.col.astype(np.int64))
        counts = torch.as_tensor(bow.data.astype(np.float64))
        n_words = max(float(counts.sum()), 1.0)
        opt = torch.optim.Adam([gu, gi, bu, bi, psi, kappa], lr=self.lr)
        self.history_: list[tuple[float, float]] = []
        for _ in tqdm(range(self.epochs), desc="HFT", disable=not self.progress):
            pred = bu[u_t] + bi[i_t] + (gu[u_t] * gi[i_t]).sum(-1)
            mse = torch.mean((pred - r_t) ** 2)
            loglik = self._word_loglik(gi, kappa, psi, rows, cols, counts) / n_words
            penalty = self.reg * (gu.pow(2).sum() + gi.pow(2).sum() + bu.pow(2).sum() + bi.pow(2).sum()) / len(r_t)
            loss = mse - self.lambda_text * loglik + penalty
            opt.zero_grad()
            loss.backward()
            opt.step()
            self.history_.append((float(mse.detach()), float(loglik.detach())))
        self.gu_, self.gi_ = gu.detach().numpy(), gi.detach().numpy()
        self.bu_, self.bi_ = bu.detach().numpy(), bi.detach().numpy()
        self.kappa_, self.phi_ = float(kappa), torch.softmax(psi.detach(), dim=1).numpy()
        return self

    @staticmethod
    def _word_loglik(gi, kappa, psi, rows, cols, counts) -> torch.Tensor:
        theta = torch.softmax(kappa * gi, dim=1)  # (n_items, k)
        log_phi = torch.log_softmax(psi, dim=1)  # (k, V)
        # log sum_k theta_ik phi_kw for every nonzero (i, w)
        mix = torch.logsumexp(torch.log(theta[rows] + 1e-300) + log_phi[:, cols].T, dim=1)  # (nnz,)
        return (counts * mix).sum()

    def topics(self) -> np.ndarray:
        """Item topic proportions ``theta`` (n_items, k)."""
        z = self.kappa_ * self.gi_
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users, items = np.asarray(users), np.asarray(items)
        ku, ki = users < len(self.bu_), items < len(self.bi_)
        u, i = np.where(ku, users, 0), np.where(ki, items, 0)
        dot = np.einsum("nk,nk->n", self.gu_[u], self.gi_[i]) * (ku & ki)
        return self.mu_ + self.bu_[u] * ku + self.bi_[i] * ki + dot
