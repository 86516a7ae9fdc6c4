"""Hidden factors as topics, HFT (McAuley & Leskovec, RecSys 2013).

Ratings follow biased MF, ``r_ui = mu + b_u + b_i + gamma_u . gamma_i``; an item's review text is
modelled by a topic mixture tied to its rating factors, ``theta_i = softmax(kappa * gamma_i)``,
with topic-word distributions ``phi_k = softmax(psi_k)``. The objective (their Eq. 7) is

    sum_(u,i) (r_ui - rec(u, i))^2 - lambda_text * sum_i sum_w n_iw log(sum_k theta_ik phi_kw) + reg ||params||^2

The original alternates gradient steps with Gibbs-sampled topic assignments; we maximize the
same objective with the topic assignments marginalized out (the exact mixture likelihood) by
full-batch Adam in torch. That keeps it deterministic and CPU-fast on review sets of this size.
``fit(train, valid)`` takes :class:`~xrec_core.data.feedback.Ratings` with the items' bag of words
in ``train.item_bow``; with ``valid`` it stops after ``patience`` steps without a lower validation
MSE and keeps the best step's parameters (McAuley & Leskovec select on a validation set too).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ..data.feedback import Ratings
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
    patience : int
        Steps without a lower validation MSE before stopping (only with ``valid``).
    seed : int
    progress : bool
        Show a progress bar over steps.
    """

    def __init__(self, k: int = 10, lambda_text: float = 0.1, reg: float = 0.01, epochs: int = 300, lr: float = 0.05,
                 patience: int = 10, seed: int = 0, progress: bool = False) -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.k, self.lambda_text, self.reg, self.epochs, self.lr, self.seed, self.progress = k, lambda_text, reg, epochs, lr, seed, progress
        self.patience = patience

    def fit(self, train: Ratings, valid: Ratings | None = None) -> "HFT":
        """Fit on ``train`` (with ``train.item_bow``); with ``valid``, early-stop on its MSE (``valid_history_``)."""
        if train.item_bow is None:
            raise ValueError("HFT needs the items' bag of words in train.item_bow")
        users, items, ratings, n_users, n_items = train.users, train.items, train.ratings, train.n_users, train.n_items
        bow = sp.coo_matrix(train.item_bow)
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
        params = [gu, gi, bu, bi, psi, kappa]
        opt = torch.optim.Adam(params, lr=self.lr)
        self.history_: list[tuple[float, float]] = []
        self.valid_history_: list[float] = []
        best, best_state, bad = np.inf, None, 0
        if valid is not None:
            known = (valid.users < n_users) & (valid.items < n_items)
            if not known.all():
                raise ValueError("valid holds user/item ids beyond train's n_users/n_items")
            vu, vi = torch.as_tensor(valid.users), torch.as_tensor(valid.items)
            vr = torch.as_tensor(valid.ratings - self.mu_)
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
            if valid is None:
                continue
            with torch.no_grad():
                pred = bu[vu] + bi[vi] + (gu[vu] * gi[vi]).sum(-1)
                self.valid_history_.append(float(torch.mean((pred - vr) ** 2)))
            if self.valid_history_[-1] < best:
                best, bad = self.valid_history_[-1], 0
                best_state = [p.detach().clone() for p in params]
            else:
                bad += 1
                if bad >= self.patience:
                    break
        if best_state is not None:
            gu, gi, bu, bi, psi, kappa = best_state
        self.gu_, self.gi_ = gu.detach().numpy(), gi.detach().numpy()
        self.bu_, self.bi_ = bu.detach().numpy(), bi.detach().numpy()
        self.kappa_, self.phi_ = float(kappa.detach()), torch.softmax(psi.detach(), dim=1).numpy()
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
