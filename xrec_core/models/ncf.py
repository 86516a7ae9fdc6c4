"""Neural collaborative filtering: NeuMF (He et al., WWW 2017), for ratings (MSE) or ranking (BPR).

NeuMF fuses a generalized matrix factorization branch (``p_u * q_i``) and an MLP branch over
concatenated user and item embeddings; a linear layer on the concatenation of both branches
gives the score (He et al., Eq. 12). SEMAX compares against it on rating prediction (squared
loss); NAR/CAR/CNR on top-k ranking (trained with BPR on sampled negatives).

``NCF(loss="mse").fit(Ratings, Ratings)`` early-stops on the validation RMSE, ``NCF(loss="bpr")
.fit(Interactions, Interactions)`` on the validation Recall@``eval_k`` of held-out likes
(:mod:`xrec_core.data.feedback`); the best epoch's weights are kept and ``curve_`` records the
learning curve.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..data.feedback import Interactions, Ratings
from ..device import pick_device
from ..progress import tqdm
from ..search_space import Int, LogFloat
from ..training import LearningCurve
from ._early_stopping import EarlyStopping
from .ranking_baselines import validation_recall
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
    """NeuMF trained by Adam on mini-batches, early-stopped on the validation split.

    ``loss="mse"``: ``fit(Ratings, Ratings)`` then ``predict(users, items)`` (the network models the
    residual around the global mean). ``loss="bpr"``: ``fit(Interactions, Interactions)`` then
    ``score(users)``, one sampled negative per positive. Without ``valid`` it trains ``epochs`` epochs.

    Parameters
    ----------
    k : int
        GMF embedding size.
    layers : sequence of int
        MLP widths.
    lr, weight_decay : float
        Adam's step size and L2 penalty.
    epochs : int
        Cap on epochs.
    batch_size : int
    patience : int
        Epochs without a better validation value before stopping (only with ``valid``).
    eval_k : int
        Cut-off of the validation recall (``loss="bpr"``).
    loss : {"mse", "bpr"}
    device : str
    seed : int
    progress : bool
        Show a progress bar over epochs.
    """

    def __init__(self, k: int = 8, layers: Sequence[int] = (64, 32, 16, 8), lr: float = 1e-3, epochs: int = 20,
                 batch_size: int = 256, weight_decay: float = 0.0, patience: int = 5, eval_k: int = 50,
                 loss: str = "mse", device: str = "cpu", seed: int = 0, progress: bool = False) -> None:
        if loss not in ("mse", "bpr"):
            raise ValueError(f"loss must be 'mse' or 'bpr', got {loss!r}")
        if patience < 1 or eval_k < 1:
            raise ValueError(f"patience and eval_k must be >= 1, got {patience}, {eval_k}")
        self.k, self.layers, self.lr, self.epochs, self.batch_size = k, tuple(layers), lr, epochs, batch_size
        self.weight_decay, self.loss, self.device, self.seed, self.progress = weight_decay, loss, device, seed, progress
        self.patience, self.eval_k = patience, eval_k

    def _init(self, n_users: int, n_items: int) -> None:
        torch.manual_seed(self.seed)
        self.device_ = pick_device(self.device)
        self.model_ = NeuMF(n_users, n_items, self.k, self.layers).to(self.device_)
        self.opt_ = torch.optim.Adam(self.model_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        self.n_users_, self.n_items_ = n_users, n_items
        self.losses_: list[float] = []

    def fit(self, train: Ratings | Interactions, valid: Ratings | Interactions | None = None,
            on_epoch: Callable[[int, float], None] | None = None) -> "NCF":
        """Fit on ``train``; with ``valid`` (the same kind), early-stop on it and keep the best epoch's weights.

        ``on_epoch(epoch, value)`` is called after each validation (e.g. Optuna pruning; may raise).
        """
        kind = Ratings if self.loss == "mse" else Interactions
        if not isinstance(train, kind) or not (valid is None or isinstance(valid, kind)):
            raise TypeError(f"NCF(loss={self.loss!r}) fits on {kind.__name__}, got {type(train).__name__}"
                            f" and {type(valid).__name__}")
        t0 = time.perf_counter()
        self._init(train.n_users, train.n_items)
        epochs = self._rating_epochs(train) if self.loss == "mse" else self._bpr_epochs(train)
        if valid is None:
            validate = None
        elif self.loss == "mse":
            def validate() -> float:
                return float(np.sqrt(valid.mse(self.predict(valid.users, valid.items))))
        else:
            users = np.flatnonzero(np.diff(valid.likes.indptr))
            rows = valid.relevant()
            relevant = [rows[u] for u in users]

            def validate() -> float:
                return validation_recall(self, train, users, relevant, self.eval_k)
        mode = "min" if self.loss == "mse" else "max"
        self.curve_ = LearningCurve(valid_metric="validation RMSE" if mode == "min" else f"validation Recall@{self.eval_k}",
                                    mode=mode, max_epochs=self.epochs)
        stopper = EarlyStopping(self.patience, mode)
        for epoch in tqdm(range(1, self.epochs + 1), desc=f"NeuMF ({self.loss})", disable=not self.progress):
            self.losses_.append(next(epochs))
            if validate is None:
                continue
            score = validate()
            self.curve_.valid.append(score)
            self.curve_.valid_epochs.append(epoch)
            stop = stopper.step(score, self.model_)
            if stopper.bad == 0:
                self.curve_.best_epoch = epoch
            if on_epoch is not None:
                on_epoch(epoch, score)
            if stop:
                self.curve_.stopped_early = True
                break
        stopper.restore(self.model_)
        self.curve_.train_loss = list(self.losses_)
        self.curve_.seconds = time.perf_counter() - t0
        return self

    def _rating_epochs(self, train: Ratings) -> Iterator[float]:
        """One epoch of squared loss on the centred ratings per ``next``; yields the epoch's mean loss."""
        ratings = train.ratings.astype(np.float32)
        self.mu_ = float(ratings.mean())
        u = torch.as_tensor(train.users, device=self.device_)
        i = torch.as_tensor(train.items, device=self.device_)
        r = torch.as_tensor(ratings - self.mu_, device=self.device_)
        gen = torch.Generator().manual_seed(self.seed)
        while True:
            perm = torch.randperm(len(r), generator=gen).to(self.device_)
            total = 0.0
            for start in range(0, len(r), self.batch_size):
                b = perm[start:start + self.batch_size]
                loss = torch.mean((self.model_(u[b], i[b]) - r[b]) ** 2)
                self.opt_.zero_grad()
                loss.backward()
                self.opt_.step()
                total += loss.item() * len(b)
            yield total / len(r)

    def _bpr_epochs(self, train: Interactions) -> Iterator[float]:
        """One epoch of BPR over every training like (one sampled negative each) per ``next``."""
        X = train.likes
        self.mu_ = 0.0
        users, pos = X.nonzero()
        rng = np.random.default_rng(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        while True:
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
            yield total / len(users)

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
    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Scores (len(users), n_items), or of the given ``items`` per user (same shape as ``items``)."""
        users = np.asarray(users)
        items = np.arange(self.n_items_) if items is None else np.asarray(items)
        grid_items = np.broadcast_to(items, (len(users), items.shape[-1]))
        grid_users = np.broadcast_to(users[:, None], grid_items.shape)
        return self.predict(grid_users.ravel(), grid_items.ravel()).reshape(grid_items.shape)
