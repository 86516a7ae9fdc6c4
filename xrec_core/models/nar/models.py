"""NAR, CAR, CNR and the contextual baselines VBPR and CER, as neural BPR rankers.

All models share the neural BPR set-up of the paper (Sec. 5.1.4): ID embeddings and feature
embeddings of size ``dim`` (350), an MLP scoring layer, the BPR loss on (user, positive, sampled
negative) triples, Adam with learning rate 0.001. ``f_u`` and ``f_i`` are the Eq. 1 feature
vectors divided by ``T`` (the paper's "normalized" feature vectors).

* :class:`NARNet` (Eqs. 2-4): user attention ``alpha_k = softmax_k(e_u M_a w_k)`` and item
  attention ``beta_k`` over the feature embeddings ``w_k``; the attention-aggregated feature
  representations enter the MLP beside ``e_u * e_i``. Its explanation is ``alpha``.
* :class:`ContextNet` (Eq. 5): ``MLP((e_u * e_i) + (E_u f_u * E_i f_i))`` with ``+`` the
  concatenation. CAR, CNR and CER use it; they differ in how they perturb features.
* :class:`VBPRNet`: the paper's "neural VBPR", ``MLP((e_u * e_i) + (theta_u * E f_i))``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from ...progress import tqdm

log = logging.getLogger(__name__)


def _mlp(dim_in: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim_in, hidden), nn.ReLU(), nn.Linear(hidden, 1))


class ContextNet(nn.Module):
    """Eq. 5: ID interaction and projected feature interaction, scored by an MLP."""

    def __init__(self, n_users: int, n_items: int, n_features: int, dim: int = 350) -> None:
        super().__init__()
        self.user, self.item = nn.Embedding(n_users, dim), nn.Embedding(n_items, dim)
        self.E_u = nn.Linear(n_features, dim, bias=False)
        self.E_i = nn.Linear(n_features, dim, bias=False)
        self.mlp = _mlp(2 * dim, dim)
        nn.init.normal_(self.user.weight, std=0.01)
        nn.init.normal_(self.item.weight, std=0.01)

    def forward(self, u: torch.Tensor, i: torch.Tensor, f_u: torch.Tensor, f_i: torch.Tensor) -> torch.Tensor:
        ids = self.user(u) * self.item(i)  # (B, dim)
        feats = self.E_u(f_u) * self.E_i(f_i)  # (B, dim)
        return self.mlp(torch.cat([ids, feats], dim=-1)).squeeze(-1)  # (B,)


class VBPRNet(nn.Module):
    """Neural VBPR: a second user embedding ``theta_u`` meets the projected item features ``E f_i``."""

    def __init__(self, n_users: int, n_items: int, n_features: int, dim: int = 350) -> None:
        super().__init__()
        self.user, self.item = nn.Embedding(n_users, dim), nn.Embedding(n_items, dim)
        self.theta = nn.Embedding(n_users, dim)
        self.E = nn.Linear(n_features, dim, bias=False)
        self.mlp = _mlp(2 * dim, dim)
        for emb in (self.user, self.item, self.theta):
            nn.init.normal_(emb.weight, std=0.01)

    def forward(self, u, i, f_u, f_i):
        return self.mlp(torch.cat([self.user(u) * self.item(i), self.theta(u) * self.E(f_i)], dim=-1)).squeeze(-1)


class NARNet(nn.Module):
    """Eqs. 2-4: user/item attention over feature embeddings, weighted by the feature values."""

    def __init__(self, n_users: int, n_items: int, n_features: int, dim: int = 350) -> None:
        super().__init__()
        self.user, self.item = nn.Embedding(n_users, dim), nn.Embedding(n_items, dim)
        self.words = nn.Parameter(torch.randn(n_features, dim) * 0.01)  # w_k
        self.M_a = nn.Parameter(torch.randn(dim, dim) * 0.01)
        self.M_b = nn.Parameter(torch.randn(dim, dim) * 0.01)
        self.mlp = _mlp(2 * dim, dim)
        nn.init.normal_(self.user.weight, std=0.01)
        nn.init.normal_(self.item.weight, std=0.01)

    def attention(self, e: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
        """Eq. 2: ``softmax_k(e M w_k)`` -> (B, n_features)."""
        return torch.softmax(e @ M @ self.words.T, dim=-1)

    def forward(self, u, i, f_u, f_i):
        e_u, e_i = self.user(u), self.item(i)  # (B, dim)
        alpha, beta = self.attention(e_u, self.M_a), self.attention(e_i, self.M_b)  # (B, P)
        agg_u = (alpha * f_u) @ self.words  # Eq. 3: sum_k alpha_k f_u^k w_k -> (B, dim)
        agg_i = (beta * f_i) @ self.words
        return self.mlp(torch.cat([e_u * e_i, agg_u * agg_i], dim=-1)).squeeze(-1)


NETS = {"NAR": NARNet, "CAR": ContextNet, "CNR": ContextNet, "CNR-L2": ContextNet, "CER": ContextNet, "VBPR": VBPRNet}


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """``-mean log sigma(x_ui - x_uj)``."""
    return -torch.nn.functional.logsigmoid(pos - neg).mean()


def sample_triples(train: sp.csr_matrix, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One (u, i, j) per training positive, ``j`` a sampled non-positive."""
    users, pos = train.nonzero()
    neg = rng.integers(0, train.shape[1], size=len(users))
    for _ in range(5):
        bad = np.asarray(train[users, neg]).ravel() > 0
        if not bad.any():
            break
        neg[bad] = rng.integers(0, train.shape[1], size=int(bad.sum()))
    return users, pos, neg


def fgsm_perturbation(grad: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Eq. 6: ``delta = epsilon * grad / ||grad||_2`` per row (rows with a zero gradient stay 0)."""
    norm = grad.norm(dim=-1, keepdim=True)
    return torch.where(norm > 0, epsilon * grad / norm.clamp_min(1e-12), torch.zeros_like(grad))


def elastic_distance(delta: torch.Tensor, kind: str) -> torch.Tensor:
    """``||delta||_2^2`` (``"l2"``) or ``||delta||_2^2 + ||delta||_1`` (``"elastic"``), per row."""
    d = delta.pow(2).sum(-1)
    if kind == "elastic":
        d = d + delta.abs().sum(-1)
    elif kind != "l2":
        raise ValueError(f"distance must be 'l2' or 'elastic', got {kind!r}")
    return d


@dataclass
class RankerConfig:
    dim: int = 350
    lr: float = 1e-3
    epochs: int = 50
    batch_size: int = 256
    epsilon: float = 0.5  # CAR's FGSM magnitude
    adv_weight: float = 1.0  # CAR's lambda (Eq. 8)
    adv_epochs: int = 10  # CAR's adversarial retraining epochs (after the base epochs)
    cf_beta: float = 0.001  # CNR's beta (Eq. 9)
    cf_outer: int = 20  # CNR's outer iterations
    cf_inner: int = 20  # gradient steps on delta per outer iteration
    cf_lr: float = 0.05
    cf_retrain_epochs: int = 1  # theta steps per outer iteration
    seed: int = 0


class ExplainableRanker:
    """Trains one of NAR / CAR / CNR / CNR-L2 / CER / VBPR and exposes scores and explanations.

    Parameters
    ----------
    model : str
        ``"NAR"``, ``"CAR"``, ``"CNR"`` (elastic-net distance), ``"CNR-L2"``, ``"CER"`` (one
        round of counterfactual augmentation on *item* features, Tan et al. 2021's setting) or
        ``"VBPR"``.
    f_u, f_i : np.ndarray
        Normalized Eq. 1 feature matrices (n_users, P) and (n_items, P).
    """

    def __init__(self, model: str, f_u: np.ndarray, f_i: np.ndarray, cfg: RankerConfig, device: str = "cpu",
                 progress: bool = False) -> None:
        if model not in NETS:
            raise ValueError(f"Unknown model {model!r}; valid: {', '.join(NETS)}")
        self.name, self.cfg, self.device, self.progress = model, cfg, torch.device(device), progress
        self.f_u = torch.as_tensor(f_u, dtype=torch.float32, device=self.device)
        self.f_i = torch.as_tensor(f_i, dtype=torch.float32, device=self.device)
        torch.manual_seed(cfg.seed)
        self.net = NETS[model](f_u.shape[0], f_i.shape[0], f_u.shape[1], cfg.dim).to(self.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self.rng = np.random.default_rng(cfg.seed)
        self.delta_user = torch.zeros_like(self.f_u)  # CAR / CNR perturbations (explanations)
        self.delta_item = torch.zeros_like(self.f_i)  # CER perturbations
        self.losses: list[float] = []

    # ------------------------------------------------------------------ training
    def _scores(self, u, i, du=None, di=None):
        fu = self.f_u[u] if du is None else self.f_u[u] + du
        fi = self.f_i[i] if di is None else self.f_i[i] + di
        return self.net(u, i, fu, fi)

    def _epoch(self, train: sp.csr_matrix, augment: str | None = None) -> float:
        users, pos, neg = sample_triples(train, self.rng)
        order = self.rng.permutation(len(users))
        total = 0.0
        for start in range(0, len(order), self.cfg.batch_size):
            b = order[start:start + self.cfg.batch_size]
            u, i, j = (torch.as_tensor(x[b], device=self.device) for x in (users, pos, neg))
            loss = bpr_loss(self._scores(u, i), self._scores(u, j))
            if augment == "adv":  # Eq. 8: fresh FGSM perturbations of the batch's user features
                delta = self._fgsm(u, i, j)
                loss = loss + self.cfg.adv_weight * bpr_loss(self._scores(u, i, delta), self._scores(u, j, delta))
            elif augment == "cf_user":
                du = self.delta_user[u]
                loss = loss + bpr_loss(self._scores(u, i, du), self._scores(u, j, du))
            elif augment == "cf_item":
                loss = loss + bpr_loss(self._scores(u, i, di=self.delta_item[i]), self._scores(u, j, di=self.delta_item[j]))
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            total += loss.item() * len(b)
        return total / max(len(order), 1)

    def _fgsm(self, u, i, j) -> torch.Tensor:
        """Eq. 6 on a batch: gradient of the BPR loss w.r.t. each triple's user features."""
        fu = self.f_u[u].clone().requires_grad_(True)
        loss = bpr_loss(self.net(u, i, fu, self.f_i[i]), self.net(u, j, fu, self.f_i[j]))
        (grad,) = torch.autograd.grad(loss * len(u), fu)
        return fgsm_perturbation(grad, self.cfg.epsilon).detach()

    def user_fgsm(self, train: sp.csr_matrix) -> torch.Tensor:
        """Per-user Eq. 6 perturbation from the gradient of the user's summed BPR loss (explanations)."""
        users, pos, neg = sample_triples(train, self.rng)
        delta_in = torch.zeros_like(self.f_u, requires_grad=True)
        u, i, j = (torch.as_tensor(x, device=self.device) for x in (users, pos, neg))
        loss = -torch.nn.functional.logsigmoid(self._scores(u, i, delta_in[u]) - self._scores(u, j, delta_in[u])).sum()
        (grad,) = torch.autograd.grad(loss, delta_in)
        return fgsm_perturbation(grad, self.cfg.epsilon).detach()

    def counterfactual_step(self, train: sp.csr_matrix, target: str = "user", distance: str = "elastic") -> float:
        """Eq. 9, delta step: with the model fixed, find small perturbations that flip each (u, i, j) decision.

        Minimizes ``sum -log sigma(x_uj - x_ui) + beta * dist(delta)`` over the perturbations
        (per user for ``target="user"``, per item for ``"item"``); returns the share of
        training pairs whose decision is flipped afterwards.
        """
        users, pos, neg = sample_triples(train, self.rng)
        u, i, j = (torch.as_tensor(x, device=self.device) for x in (users, pos, neg))
        base = self.delta_user if target == "user" else self.delta_item
        delta = torch.zeros_like(base, requires_grad=True)
        opt = torch.optim.Adam([delta], lr=self.cfg.cf_lr)
        for p in self.net.parameters():
            p.requires_grad_(False)
        for _ in range(self.cfg.cf_inner):
            if target == "user":
                x_ui, x_uj = self._scores(u, i, delta[u]), self._scores(u, j, delta[u])
            else:
                x_ui, x_uj = self._scores(u, i, di=delta[i]), self._scores(u, j, di=delta[j])
            flip = -torch.nn.functional.logsigmoid(x_uj - x_ui).sum()
            loss = flip + self.cfg.cf_beta * elastic_distance(delta, distance).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        for p in self.net.parameters():
            p.requires_grad_(True)
        with torch.no_grad():
            if target == "user":
                self.delta_user = delta.detach()
                flipped = (self._scores(u, i, self.delta_user[u]) < self._scores(u, j, self.delta_user[u])).float().mean()
            else:
                self.delta_item = delta.detach()
                flipped = (self._scores(u, i, di=self.delta_item[i]) < self._scores(u, j, di=self.delta_item[j])).float().mean()
        return float(flipped)

    def fit(self, train: sp.csr_matrix) -> "ExplainableRanker":
        """Base training, then the model's own augmentation (CAR: adversarial; CNR/CER: counterfactual)."""
        train = sp.csr_matrix(train)
        for _ in tqdm(range(self.cfg.epochs), desc=f"{self.name} base", disable=not self.progress):
            self.losses.append(self._epoch(train))
        if self.name == "CAR":
            for _ in tqdm(range(self.cfg.adv_epochs), desc="CAR adversarial", disable=not self.progress):
                self.losses.append(self._epoch(train, augment="adv"))
            self.delta_user = self.user_fgsm(train)
        elif self.name in ("CNR", "CNR-L2"):
            distance = "elastic" if self.name == "CNR" else "l2"
            self.flip_rates = []
            for _ in tqdm(range(self.cfg.cf_outer), desc=f"{self.name} minimax", disable=not self.progress):
                self.flip_rates.append(self.counterfactual_step(train, "user", distance))
                for _e in range(self.cfg.cf_retrain_epochs):
                    self.losses.append(self._epoch(train, augment="cf_user"))
        elif self.name == "CER":
            self.flip_rates = [self.counterfactual_step(train, "item", "elastic")]
            for _e in range(self.cfg.cf_retrain_epochs):
                self.losses.append(self._epoch(train, augment="cf_item"))
        return self

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def score_candidates(self, users: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Scores of each user's candidate items: ``candidates`` (n, C) -> (n, C)."""
        self.net.eval()
        u = torch.as_tensor(np.repeat(users, candidates.shape[1]), device=self.device)
        i = torch.as_tensor(candidates.ravel(), device=self.device)
        out = torch.cat([self._scores(u[s:s + 8192], i[s:s + 8192]) for s in range(0, len(u), 8192)])
        self.net.train()
        return out.cpu().numpy().reshape(candidates.shape)

    @torch.no_grad()
    def explanations(self) -> np.ndarray:
        """Per-user explanation vectors (n_users, P): NAR's attention, CAR/CNR's perturbation magnitudes."""
        if self.name == "NAR":
            users = torch.arange(self.f_u.shape[0], device=self.device)
            return self.net.attention(self.net.user(users), self.net.M_a).cpu().numpy()
        if self.name in ("CAR", "CNR", "CNR-L2"):
            return self.delta_user.abs().cpu().numpy()
        raise ValueError(f"{self.name} has no user explanation vector")
