"""The common fit/predict loop of the chapter's neural rating models.

All models share one protocol: mini-batch training on the training reviews with Adam, ratings
centred on the training mean (a fixed output bias, so that every model starts from the mean
rating), early stopping on the RMSE of a validation split carved from the training period, and
prediction from the user's and item's *earlier* reviews only (:class:`ReviewBatch`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from ...progress import tqdm

from ...device import pick_device, set_seed
from .._early_stopping import EarlyStopping
from .inputs import ReviewCorpus

log = logging.getLogger(__name__)


@dataclass
class ReviewBatch:
    """One mini-batch as tensors.

    ``hist_tokens``/``hist_lengths`` hold the *unique* history reviews of the batch (each encoded
    once), ``user_hist``/``item_hist`` index into them (``-1`` = padding). ``tokens``/``lengths``
    are the target reviews, filled only for training batches of models with a related task.
    """

    users: torch.Tensor  # (B,)
    items: torch.Tensor  # (B,)
    ratings: torch.Tensor  # (B,)
    user_hist: torch.Tensor  # (B, M) positions in hist_tokens
    item_hist: torch.Tensor  # (B, M)
    hist_tokens: torch.Tensor  # (U, L)
    hist_lengths: torch.Tensor  # (U,)
    tokens: torch.Tensor | None = None  # (B, L)
    lengths: torch.Tensor | None = None  # (B,)

    @classmethod
    def make(cls, corpus: ReviewCorpus, idx: np.ndarray, device: torch.device, *, with_target: bool) -> "ReviewBatch":
        uh, ih = corpus.user_hist[idx], corpus.item_hist[idx]  # (B, M)
        both = np.concatenate([uh, ih], axis=1)
        uniq, inverse = np.unique(both, return_inverse=True)
        inverse = inverse.reshape(both.shape)
        if uniq.size and uniq[0] == -1:  # padding maps to -1, real reviews to 0..U-1
            uniq, inverse = uniq[1:], inverse - 1
        else:
            inverse = np.where(both >= 0, inverse, -1)
        lens = corpus.lengths[uniq] if uniq.size else np.ones(1, dtype=np.int64)
        width = int(lens.max())
        hist_tokens = corpus.tokens[uniq, :width] if uniq.size else np.full((1, 1), corpus.pad_id)
        if not uniq.size:
            lens = np.ones(1, dtype=np.int64)
        M = uh.shape[1]

        def t(a, dtype=torch.long):
            return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

        batch = cls(users=t(corpus.users[idx]), items=t(corpus.items[idx]), ratings=t(corpus.ratings[idx], torch.float32),
                    user_hist=t(inverse[:, :M]), item_hist=t(inverse[:, M:]), hist_tokens=t(hist_tokens), hist_lengths=t(lens))
        if with_target:
            tl = corpus.lengths[idx]
            batch.tokens = t(corpus.tokens[idx, : int(tl.max())])
            batch.lengths = t(tl)
        return batch

    def history_docs(self, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
        """User and item documents for DeepCoNN/TransNets: the concatenated history reviews.

        Returns two ``(B, M * L)`` token tensors; padding slots are ``pad_id``.
        """
        pad_row = torch.full((1, self.hist_tokens.size(1)), pad_id, dtype=self.hist_tokens.dtype, device=self.hist_tokens.device)
        table = torch.cat([self.hist_tokens, pad_row], dim=0)  # (U + 1, L); row U is all padding

        def doc(hist: torch.Tensor) -> torch.Tensor:
            rows = torch.where(hist >= 0, hist, torch.full_like(hist, table.size(0) - 1))  # (B, M)
            return table[rows].reshape(hist.size(0), -1)  # (B, M * L)

        return doc(self.user_hist), doc(self.item_hist)


class NeuralRatingModel:
    """Base class: subclasses build ``self.net`` in :meth:`_build` and define the loss and the prediction.

    Parameters
    ----------
    lr : float
        Adam learning rate.
    batch_size : int
    epochs : int
        Maximum number of passes over the training reviews.
    patience : int
        Stop after this many epochs without a better validation RMSE (needs ``valid_idx``).
    weight_decay : float
    seed : int
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    progress : bool
        Show a tqdm bar per epoch.
    """

    #: whether training batches carry the target review (related task / target network).
    uses_target_text = False
    name = "model"

    def __init__(self, *, lr: float = 1e-3, batch_size: int = 64, epochs: int = 20, patience: int = 2,
                 weight_decay: float = 0.0, seed: int = 0, device: str = "auto", progress: bool = False) -> None:
        if batch_size < 1 or epochs < 1:
            raise ValueError(f"batch_size and epochs must be >= 1, got {batch_size}, {epochs}")
        self.lr, self.batch_size, self.epochs, self.patience = lr, batch_size, epochs, patience
        self.weight_decay, self.seed, self.device, self.progress = weight_decay, seed, device, progress
        self.net: nn.Module | None = None
        self.history_: list[dict[str, float]] = []

    # -- to implement
    def _build(self, corpus: ReviewCorpus) -> nn.Module:
        raise NotImplementedError

    def _loss(self, batch: ReviewBatch, target: torch.Tensor) -> torch.Tensor:
        """Training loss of a batch; ``target`` are the centred ratings ``(B,)``."""
        raise NotImplementedError

    def _predict_batch(self, batch: ReviewBatch) -> torch.Tensor:
        """Centred rating predictions ``(B,)`` from the histories only (no target review)."""
        raise NotImplementedError

    # -- optimisation (TransNets overrides these for its three-step update)
    def _make_optimizers(self) -> None:
        self._opt = torch.optim.Adam(self.net.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    def _train_step(self, batch: ReviewBatch) -> float:
        self._opt.zero_grad()
        loss = self._loss(batch, batch.ratings - self.mu_)
        loss.backward()
        self._opt.step()
        return float(loss.detach())

    # -- public API
    def fit(self, corpus: ReviewCorpus, train_idx: np.ndarray, valid_idx: np.ndarray | None = None) -> "NeuralRatingModel":
        """Train on the reviews ``train_idx`` of ``corpus``; early-stop on ``valid_idx`` when given."""
        train_idx = np.asarray(train_idx, dtype=np.int64)
        if train_idx.size == 0:
            raise ValueError(f"{self.name}: empty training set")
        set_seed(self.seed)
        self.device_ = pick_device(self.device)
        self.mu_ = float(corpus.ratings[train_idx].mean())
        self.pad_id_ = corpus.pad_id
        self.net = self._build(corpus).to(self.device_)
        self._make_optimizers()
        rng = np.random.default_rng(self.seed)
        stopper = EarlyStopping(self.patience, min_delta=1e-6)
        self.history_, n_seen, t_train = [], 0, 0.0
        for epoch in range(1, self.epochs + 1):
            self.net.train()
            order = rng.permutation(train_idx)
            losses = []
            t0 = time.perf_counter()
            for start in tqdm(range(0, len(order), self.batch_size), desc=f"{self.name} epoch {epoch}",
                              disable=not self.progress, leave=False):
                idx = order[start:start + self.batch_size]
                losses.append(self._train_step(ReviewBatch.make(corpus, idx, self.device_, with_target=self.uses_target_text)))
            t_train += time.perf_counter() - t0
            n_seen += len(order)
            entry = {"epoch": epoch, "train_loss": float(np.mean(losses))}
            if valid_idx is not None and len(valid_idx):
                err = self.predict(corpus, valid_idx) - corpus.ratings[valid_idx]
                entry["valid_rmse"] = float(np.sqrt(np.mean(err ** 2)))
            self.history_.append(entry)
            log.info("%s seed %d %s", self.name, self.seed, entry)
            if "valid_rmse" in entry and stopper.step(entry["valid_rmse"], self.net):
                break
        stopper.restore(self.net)
        self.best_epoch_ = (int(np.argmin([h.get("valid_rmse", np.inf) for h in self.history_]) + 1)
                            if stopper.improved_once else len(self.history_))
        self.train_examples_per_s_ = n_seen / max(t_train, 1e-9)
        return self

    @torch.no_grad()
    def predict(self, corpus: ReviewCorpus, idx: np.ndarray) -> np.ndarray:
        """Predicted ratings of the reviews ``idx`` from their earlier reviews only."""
        if self.net is None:
            raise RuntimeError(f"{self.name}: call fit() before predict()")
        idx = np.asarray(idx, dtype=np.int64)
        self.net.eval()
        out = []
        for start in range(0, len(idx), 4 * self.batch_size):
            batch = ReviewBatch.make(corpus, idx[start:start + 4 * self.batch_size], self.device_, with_target=False)
            out.append(self._predict_batch(batch).float().cpu().numpy())
        return (np.concatenate(out) if out else np.empty(0)) + self.mu_
