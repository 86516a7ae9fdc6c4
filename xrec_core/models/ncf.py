"""Neural collaborative filtering: NeuMF (He et al., WWW 2017), for ratings (MSE) or ranking (BPR).

NeuMF fuses a generalized matrix factorization branch (``p_u * q_i``) and an MLP branch over
concatenated user and item embeddings; a linear layer on the concatenation of both branches
gives the score (He et al., Eq. 12). SEMAX compares against it on rating prediction (squared
loss); NAR/CAR/CNR on top-k ranking (trained with BPR on sampled negatives).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from ..progress import tqdm

from ..device import pick_device
from ..search_space import Int, LogFloat
from .registry import RANKING, register


class NeuMF(nn.Module):
    """GMF + MLP towers.

    Parameters
    ----------
    n_users, n_items : int
    k : int
        GMF embedding size ("predictive factors").
    mlp_layers : sequence of int
        MLP widths; the first is the concatenated user+item embedding size.
    """

    def __init__(self, n_users: int, n_items: int, k: int = 8, mlp_layers: Sequence[int] = (64, 32, 16, 8)) -> None:
        super().__init__()
        self.gmf_user, self.gmf_item = nn.Embedding(n_users, k), nn.Embedding(n_items, k)
        half = mlp_layers[0] // 2
        self.mlp_user, self.mlp_item = nn.Embedding(n_users, half), nn.Embedding(n_items, half)
        layers: list[nn.Module] = []
        for d_in, d_out in zip(mlp_layers[:-1], mlp_layers[1:]):
            layers += [nn.Linear(d_in, d_out), nn.ReLU()]
        self.mlp = nn.Sequential(*layers)
        self.out = nn.Linear(k + mlp_layers[-1], 1)
        for emb in (self.gmf_user, self.gmf_item, self.mlp_user, self.mlp_item):
            nn.init.normal_(emb.weight, std=0.01)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        gmf = self.gmf_user(users) * self.gmf_item(items)  # (B, k)
        mlp = self.mlp(torch.cat([self.mlp_user(users), self.mlp_item(items)], dim=-1))  # (B, mlp_layers[-1])
        return self.out(torch.cat([gmf, mlp], dim=-1)).squeeze(-1)  # (B,)


@register("NCF", role=RANKING, search_space={"k": Int(8, 128, log=True), "lr": LogFloat(1e-4, 1e-2), "weight_decay": LogFloat(1e-7, 1e-3)},
          source="He et al. 2017")
class NCF:
    """cornac-like wrapper around :class:`NeuMF`.

    ``loss="mse"``: ``fit(users, items, ratings, n_users, n_items)`` then ``predict(users, items)``
    (the network models the residual around the global mean). ``loss="bpr"``:
    ``fit(interactions_csr)`` then ``score(user_ids)``, one sampled negative per positive.
    """

    def __init__(self, k: int = 8, layers: Sequence[int] = (64, 32, 16, 8), lr: float = 1e-3, epochs: int = 20,
                 batch_size: int = 256, weight_decay: float = 0.0, loss: str = "mse", device: str = "cpu",
                 seed: int = 0, progress: bool = False) -> None:
        if loss not in ("mse", "bpr"):
            raise ValueError(f"loss must be 'mse' or 'bpr', got {loss!r}")
        self.k, self.layers, self.lr, self.epochs, self.batch_size = k, tuple(layers), lr, epochs, batch_size
        self.weight_decay, self.loss, self.device, self.seed, self.progress = weight_decay, loss, device, seed, progress

    def _init(self, n_users: int, n_items: int) -> None:
        torch.manual_seed(self.seed)
        self.device_ = pick_device(self.device)
        self.model_ = NeuMF(n_users, n_items, self.k, self.layers).to(self.device_)
        self.opt_ = torch.optim.Adam(self.model_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        self.n_users_, self.n_items_ = n_users, n_items
        self.losses_: list[float] = []

    def fit(self, *args, **kwargs) -> "NCF":
        return self._fit_ratings(*args, **kwargs) if self.loss == "mse" else self._fit_bpr(*args, **kwargs)

    def _fit_ratings(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int | None = None,
                     n_items: int | None = None) -> "NCF":
        users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        ratings = np.asarray(ratings, dtype=np.float32)
        self._init(int(n_users or users.max() + 1), int(n_items or items.max() + 1))
        self.mu_ = float(ratings.mean())
        u = torch.as_tensor(users, device=self.device_)
        i = torch.as_tensor(items, device=self.device_)
        r = torch.as_tensor(ratings - self.mu_, device=self.device_)
        gen = torch.Generator().manual_seed(self.seed)
        for _ in tqdm(range(self.epochs), desc="NeuMF (mse)", disable=not self.progress):
            perm = torch.randperm(len(r), generator=gen).to(self.device_)
            total = 0.0
            for start in range(0, len(r), self.batch_size):
                b = perm[start:start + self.batch_size]
                loss = torch.mean((self.model_(u[b], i[b]) - r[b]) ** 2)
                self.opt_.zero_grad()
                loss.backward()
                self.opt_.step()
                total += loss.item() * len(b)
            self.losses_.append(total / len(r))
        return self

    def _fit_bpr(self, interactions: sp.spmatrix) -> "NCF":
        X = sp.csr_matrix(interactions)
        self._init(*X.shape)
        self.mu_ = 0.0
        users, pos = X.nonzero()
        rng = np.random.default_rng(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        for _ in tqdm(range(self.epochs), desc="NeuMF (bpr)", disable=not self.progress):
            neg = rng.integers(0, X.shape[1], size=len(users))
            bad = np.asarray(X[users, neg]).ravel() > 0
            neg[bad] = rng.integers(0, X.shape[1], size=int(bad.sum()))
            u, i, j = (torch.as_tensor(a, device=self.device_) for a in (users, pos, neg))
            perm = torch.randperm(len(users), generator=gen).to(self.device_)
            total = 0.0
            for start in range(0, len(users), self.batch_size):
                b = perm[start:start + self.batch_size]
                diff = self.model_(u[b], i[b]) - self.model_(u[b], j[b])
                loss = -torch.nn.functional.logsigmoid(diff).mean()
                self.opt_.zero_grad()
                loss.backward()
                self.opt_.step()
                total += loss.item() * len(b)
            self.losses_.append(total / len(users))
        return self

    @torch.no_grad()
    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        known = (users < self.n_users_) & (items < self.n_items_)
        u = torch.as_tensor(np.where(known, users, 0), device=self.device_)
        i = torch.as_tensor(np.where(known, items, 0), device=self.device_)
        self.model_.eval()
        chunk = 1 << 18  # bounds memory when scoring users x all items
        out = np.concatenate([self.model_(u[s:s + chunk], i[s:s + chunk]).cpu().numpy() for s in range(0, len(u), chunk)]
                             or [np.zeros(0)]).astype(np.float64)
        self.model_.train()
        return self.mu_ + np.where(known, out, 0.0)

    @torch.no_grad()
    def score(self, user_ids: np.ndarray, item_ids: np.ndarray | None = None) -> np.ndarray:
        """Scores (len(user_ids), n_items), or of the given ``item_ids`` per user (same shape as ``item_ids``)."""
        user_ids = np.asarray(user_ids)
        items = np.arange(self.n_items_) if item_ids is None else np.asarray(item_ids)
        grid_items = np.broadcast_to(items, (len(user_ids), items.shape[-1]))
        grid_users = np.broadcast_to(user_ids[:, None], grid_items.shape)
        return self.predict(grid_users.ravel(), grid_items.ravel()).reshape(grid_items.shape)
