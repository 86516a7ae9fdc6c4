"""The common fit/predict loop of the chapter's neural rating models.

All models share one protocol: mini-batch training on the training reviews with Adam through
:class:`xrec_core.training.Trainer` (early stopping on the RMSE of a validation split carved from
the training period, best state kept, learning curve returned), ratings centred on the training
mean (a fixed output offset, so that every model starts from the global mean rating), and
prediction from the user's and item's *earlier* reviews only (:class:`ReviewBatch`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ...device import pick_device, set_seed
from ...training import LearningCurve, Trainer
from .inputs import ReviewCorpus, ReviewSet

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

    Every argument is required: the chapter's config (:class:`xrec_core.experiments.semax.SemaxConfig`)
    is the one place that holds their values.

    Parameters
    ----------
    lr : float
        Adam learning rate.
    batch_size : int
    max_epochs : int
        Cap on passes over the training reviews (training normally ends by ``patience``).
    patience : int
        Stop after this many epochs without a better validation RMSE.
    weight_decay : float
        L2 penalty of Adam.
    seed : int
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    progress : bool
        Show a progress bar over epochs.
    """

    #: whether training batches carry the target review (related task / target network).
    uses_target_text = False
    name = "model"

    def __init__(self, *, lr: float, batch_size: int, max_epochs: int, patience: int, weight_decay: float, seed: int,
                 device: str, progress: bool = False) -> None:
        if batch_size < 1 or max_epochs < 1 or patience < 1:
            raise ValueError(f"batch_size, max_epochs and patience must be >= 1, got {batch_size}, {max_epochs}, {patience}")
        self.lr, self.batch_size, self.max_epochs, self.patience = lr, batch_size, max_epochs, patience
        self.weight_decay, self.seed, self.device, self.progress = weight_decay, seed, device, progress
        self.net: nn.Module | None = None
        self.curve_: LearningCurve | None = None

    # -- to implement
    def _build(self, corpus: ReviewCorpus) -> nn.Module:
        raise NotImplementedError

    def _loss(self, batch: ReviewBatch, target: torch.Tensor) -> torch.Tensor:
        """Training loss of a batch; ``target`` are the centred ratings ``(B,)``."""
        raise NotImplementedError

    def _predict_batch(self, batch: ReviewBatch) -> torch.Tensor:
        """Centred rating predictions ``(B,)`` from the histories only (no target review)."""
        raise NotImplementedError

    # -- optimisation (TransNets overrides both for its three-step update)
    def _make_optimizer(self) -> torch.optim.Optimizer | None:
        """The optimizer the trainer steps; ``None`` when :meth:`_train_step` steps its own."""
        return torch.optim.Adam(self.net.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    def _train_step(self, batch: ReviewBatch) -> torch.Tensor | float:
        return self._loss(batch, batch.ratings - self.mu_)

    # -- public API
    def fit(self, train: ReviewSet, valid: ReviewSet,
            on_epoch: Callable[[int, float], None] | None = None) -> "NeuralRatingModel":
        """Train on the reviews of ``train`` until the RMSE on ``valid`` stops improving; keep the best state.

        ``on_epoch(epoch, valid_rmse)`` is called after every validation (a tuning trial's pruning hook).
        """
        if len(train.idx) == 0 or len(valid.idx) == 0:
            raise ValueError(f"{self.name}: empty training or validation set")
        corpus = train.corpus
        set_seed(self.seed)
        self.device_ = pick_device(self.device)
        self.mu_ = float(corpus.ratings[train.idx].mean())
        self.pad_id_ = corpus.pad_id
        self.net = self._build(corpus).to(self.device_)
        optimizer = self._make_optimizer()
        rng = np.random.default_rng(self.seed)
        y_valid = valid.corpus.ratings[valid.idx].astype(np.float64)

        def batches(epoch: int):
            order = rng.permutation(train.idx)
            for start in range(0, len(order), self.batch_size):
                yield ReviewBatch.make(corpus, order[start:start + self.batch_size], self.device_,
                                       with_target=self.uses_target_text)

        def validate() -> float:
            return float(np.sqrt(np.mean((self.predict(valid) - y_valid) ** 2)))

        trainer = Trainer(max_epochs=self.max_epochs, patience=self.patience, mode="min", min_delta=1e-6,
                          device=self.device_, valid_metric="validation RMSE", progress=self.progress,
                          desc=f"{self.name} seed {self.seed}")
        self.curve_ = trainer.fit(self.net, batches=batches, step=self._train_step, validate=validate,
                                  optimizer=optimizer, on_epoch=on_epoch)
        return self

    @torch.no_grad()
    def predict(self, reviews: ReviewSet) -> np.ndarray:
        """Predicted ratings of ``reviews`` from their earlier reviews only."""
        if self.net is None:
            raise RuntimeError(f"{self.name}: call fit() before predict()")
        idx = np.asarray(reviews.idx, dtype=np.int64)
        was_training = self.net.training
        self.net.eval()
        out = []
        for start in range(0, len(idx), 4 * self.batch_size):
            batch = ReviewBatch.make(reviews.corpus, idx[start:start + 4 * self.batch_size], self.device_, with_target=False)
            out.append(self._predict_batch(batch).float().cpu().numpy())
        self.net.train(was_training)
        return (np.concatenate(out) if out else np.empty(0)).astype(np.float64) + self.mu_
