"""ConvMF+ (Kim, Park, Oh, Lee & Yu, RecSys 2016): PMF whose item prior is a CNN over the item document.

Docs
----
Convolutional Matrix Factorization places a Gaussian prior on each item latent vector centred on
the output of a text CNN read over the item's document (all its training reviews, concatenated):
``v_j = cnn(W, X_j) + eps_j``. MAP estimation alternates (Kim et al., Eqs. 7-9)

* ``u_i <- (V I_i V^T + lambda_U I)^-1 V R_i``
* ``v_j <- (U I_j U^T + lambda_V I)^-1 (U R_j + lambda_V cnn(W, X_j))``
* ``W`` by back-propagation on ``sum_j ||v_j - cnn(W, X_j)||^2`` (the CNN regresses the current
  item vectors; weight decay ``lambda_W``),

and predicts ``r_ij = u_i^T v_j``. The CNN follows the authors' code: embedding -> convolutions
of widths 3, 4, 5 with 100 ReLU filters each -> max-pooling over time -> 200-unit tanh layer ->
dropout 0.2 -> ``K``-unit tanh projection, trained with RMSprop for a few epochs per ALS
iteration; the document is cut to 300 words; ``K = 50``, ``lambda_U = 1``, ``lambda_V = 100``
(the authors' Amazon setting). "ConvMF+" is ConvMF with pre-trained word embeddings (GloVe in
Kim et al.); with no download possible here, the embeddings are word2vec skip-gram vectors
(gensim) trained on the same training item documents, then fine-tuned. The closed-form updates
are the MT chapter's vectorised ALS step (:func:`xrec_core.models.mt.camf.als_update`, with a
zero user prior and the CNN output as item prior). Two choices of ours: users or items without
training ratings are predicted at the training mean (ConvMF would predict 0 for them), and an
optional validation set stops training early (the authors stop after 5 iterations without
validation improvement) -- otherwise the loop ends when the relative change of the objective
falls below ``tol`` or after ``epochs`` iterations. ``fit(train, valid)`` takes
:class:`~xrec_core.data.feedback.Ratings`, the item documents in ``train.item_docs``.
"""

from __future__ import annotations

import copy
import logging
import zlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..data.feedback import Ratings
from .mt.camf import als_update
from ..search_space import Float, LogFloat
from .registry import RATING, register

log = logging.getLogger(__name__)


def _stable_hash(text: str) -> int:
    """Deterministic replacement for Python's salted ``hash`` in gensim's vector initialisation."""
    return zlib.crc32(text.encode("utf-8"))


class TextCNN(nn.Module):
    """Kim et al.'s document CNN: ``(B, L)`` word ids (0 = padding) -> ``(B, K)`` item prior in (-1, 1)."""

    def __init__(self, n_words: int, emb_dim: int, out_dim: int, windows: Sequence[int] = (3, 4, 5),
                 n_filters: int = 100, hidden_dim: int = 200, dropout: float = 0.2) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_words, emb_dim, padding_idx=0)
        self.convs = nn.ModuleList([nn.Conv1d(emb_dim, n_filters, w) for w in windows])
        self.hidden = nn.Linear(n_filters * len(windows), hidden_dim)
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.embed(x).transpose(1, 2)  # (B, E, L)
        pooled = [torch.relu(conv(e)).amax(-1) for conv in self.convs]  # each (B, F)
        h = torch.tanh(self.hidden(torch.cat(pooled, -1)))  # (B, 200)
        return torch.tanh(self.proj(self.drop(h)))  # (B, K)


@register("ConvMF+", role=RATING, search_space={"lambda_u": LogFloat(0.01, 100.0), "lambda_v": LogFloat(1.0, 1000.0), "dropout": Float(0.0, 0.5)},
          source="Kim et al. 2016")
class ConvMFPlus:
    """ConvMF with pre-trained (word2vec) embeddings, fitted by ALS + CNN regression (Kim et al. 2016).

    Parameters
    ----------
    n_factors : int
        Latent dimension ``K`` (paper: 50).
    lambda_u, lambda_v : float
        Prior precision ratios (paper, Amazon: 1 and 100).
    lambda_w : float
        Weight decay of the CNN.
    emb_dim : int
        Word-vector size (paper: 200).
    max_len : int
        Words kept per item document (paper: 300).
    windows, n_filters, hidden_dim, dropout : CNN sizes (paper: (3, 4, 5), 100, 200, 0.2).
    epochs : int
        Maximum outer iterations (ALS sweep of U and V + CNN regression; paper's code: 200, with
        early stopping).
    cnn_epochs, batch_size, lr : CNN epochs per ALS iteration, mini-batch size and RMSprop rate.
    tol : float
        Stop when the objective's relative change falls below this.
    patience : int
        With a validation set: iterations without improvement before stopping (paper: 5).
    w2v_epochs : int
        Epochs of the gensim skip-gram pre-training (0 = random embeddings, i.e. plain ConvMF).
    center : bool
        Factorize ratings minus the training mean and add it back when predicting (not in Kim
        et al., whose model is ``u_i^T v_j`` on raw ratings; see the module docstring).
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    seed : int
        Seed of the initialisation and the batch order.
    """

    def __init__(self, n_factors: int = 50, lambda_u: float = 1.0, lambda_v: float = 100.0, lambda_w: float = 0.0,
                 emb_dim: int = 200, max_len: int = 300, windows: Sequence[int] = (3, 4, 5), n_filters: int = 100,
                 hidden_dim: int = 200, dropout: float = 0.2, epochs: int = 200, cnn_epochs: int = 5,
                 batch_size: int = 128, lr: float = 1e-3, tol: float = 1e-4, patience: int = 5, w2v_epochs: int = 5,
                 center: bool = False, device: str = "auto", seed: int = 0) -> None:
        if n_factors < 1 or epochs < 1 or max_len < max(windows):
            raise ValueError(f"need n_factors >= 1, epochs >= 1, max_len >= {max(windows)}")
        self.n_factors, self.lambda_u, self.lambda_v, self.lambda_w = n_factors, lambda_u, lambda_v, lambda_w
        self.emb_dim, self.max_len, self.windows, self.n_filters = emb_dim, max_len, tuple(windows), n_filters
        self.hidden_dim, self.dropout, self.epochs, self.cnn_epochs = hidden_dim, dropout, epochs, cnn_epochs
        self.batch_size, self.lr, self.tol, self.patience = batch_size, lr, tol, patience
        self.w2v_epochs, self.center, self.device_name, self.seed = w2v_epochs, center, device, seed
        self.history: list[dict[str, float]] = []
        self.U: np.ndarray | None = None  # (N, K)
        self.V: np.ndarray | None = None  # (M, K)

    # -- pieces ----------------------------------------------------------------------------
    def _doc_matrix(self, item_docs: Sequence[Sequence[int]], n_items: int) -> np.ndarray:
        if len(item_docs) != n_items:
            raise ValueError(f"item_docs must hold one document per item ({n_items}), got {len(item_docs)}")
        X = np.zeros((n_items, self.max_len), dtype=np.int64)  # (M, L) ids shifted by 1, 0 = padding
        for j, doc in enumerate(item_docs):
            ids = np.asarray(doc[: self.max_len], dtype=np.int64)
            if ids.size and ids.min() < 0:
                raise ValueError(f"item_docs[{j}] holds negative token ids")
            X[j, : len(ids)] = ids + 1
        return X

    def _pretrained(self, item_docs: Sequence[Sequence[int]], n_words: int) -> np.ndarray | None:
        if not self.w2v_epochs:
            return None
        from gensim.models import Word2Vec

        sentences = [[str(t) for t in doc] for doc in item_docs if len(doc)]
        w2v = Word2Vec(sentences, vector_size=self.emb_dim, window=5, sg=1, min_count=1, workers=1, seed=self.seed,
                       epochs=self.w2v_epochs, hashfxn=_stable_hash)
        table = np.random.default_rng(self.seed).normal(0, 0.1, (n_words, self.emb_dim)).astype(np.float32)
        ids = np.array([int(k) for k in w2v.wv.index_to_key]) + 1
        table[ids] = w2v.wv.vectors
        table[0] = 0.0
        return table

    def _theta(self, X: torch.Tensor) -> np.ndarray:
        self.cnn.eval()
        with torch.no_grad():
            out = torch.cat([self.cnn(X[k:k + self.batch_size]) for k in range(0, len(X), self.batch_size)])  # (M, K)
        return out.cpu().numpy().astype(np.float64)

    def _train_cnn(self, X: torch.Tensor, V: np.ndarray, rng: np.random.Generator) -> float:
        target = torch.from_numpy(V.astype(np.float32)).to(self.device)
        self.cnn.train()
        total = 0.0
        for _ in range(self.cnn_epochs):
            for idx in np.array_split(rng.permutation(len(X)), max(1, int(np.ceil(len(X) / self.batch_size)))):
                idx_t = torch.from_numpy(idx).to(self.device)
                loss = ((self.cnn(X[idx_t]) - target[idx_t]) ** 2).mean()
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()
                total = float(loss.detach())
        return total

    def _objective(self, users, items, ratings, theta) -> float:
        err = ratings - np.einsum("nk,nk->n", self.U[users], self.V[items])
        return float(0.5 * err @ err + 0.5 * self.lambda_u * np.sum(self.U ** 2)
                     + 0.5 * self.lambda_v * np.sum((self.V - theta) ** 2))

    # -- public API ------------------------------------------------------------------------
    def fit(self, train: Ratings, valid: Ratings | None = None) -> "ConvMFPlus":
        """Fit on training ratings and item documents; with ``valid``, early-stop on its MSE.

        Parameters
        ----------
        train : Ratings
            Training triples; ``train.item_docs[j]`` is item ``j``'s training reviews as vocabulary
            ids, concatenated (empty for items without).
        valid : Ratings, optional
            Validation triples for early stopping on their MSE.
        """
        from ..progress import tqdm

        from ..device import pick_device

        if len(train) == 0:
            raise ValueError("ConvMF+ needs at least one training rating")
        if train.item_docs is None:
            raise ValueError("ConvMF+ needs the item documents in train.item_docs")
        users, items, ratings, n_users, n_items = train.users, train.items, train.ratings, train.n_users, train.n_items
        item_docs = train.item_docs
        self.mu = float(ratings.mean())
        self.offset = self.mu if self.center else 0.0
        ratings = ratings - self.offset
        self.seen_users = np.bincount(users, minlength=n_users) > 0
        self.seen_items = np.bincount(items, minlength=n_items) > 0
        self.device = pick_device(self.device_name)
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        X_np = self._doc_matrix(item_docs, n_items)
        n_words = int(X_np.max()) + 1
        self.cnn = TextCNN(n_words, self.emb_dim, self.n_factors, self.windows, self.n_filters, self.hidden_dim,
                           self.dropout).to(self.device)
        table = self._pretrained(item_docs, n_words)
        if table is not None:
            with torch.no_grad():
                self.cnn.embed.weight.copy_(torch.from_numpy(table))
        self.opt = torch.optim.RMSprop(self.cnn.parameters(), lr=self.lr, weight_decay=self.lambda_w)
        X = torch.from_numpy(X_np).to(self.device)
        theta = self._theta(X)  # (M, K)
        self.U = rng.uniform(0, 1, (n_users, self.n_factors))  # as the authors' code
        self.V = theta.copy()
        zeros_u = np.zeros_like(self.U)
        prev, best, best_state, bad = None, np.inf, None, 0
        self.history = []
        for it in tqdm(range(self.epochs), desc="ConvMF+", leave=False):
            self.U = als_update(users, items, ratings, n_users, self.V, zeros_u, self.lambda_u)
            self.V = als_update(items, users, ratings, n_items, self.U, theta, self.lambda_v)
            cnn_loss = self._train_cnn(X, self.V, rng)
            theta = self._theta(X)
            obj = self._objective(users, items, ratings, theta)
            row = {"iter": it + 1, "objective": obj, "cnn_loss": cnn_loss}
            if valid is not None:
                row["valid_mse"] = valid.mse(self.predict(valid.users, valid.items))  # on the rating scale
                if row["valid_mse"] < best:
                    best, bad = row["valid_mse"], 0
                    best_state = (self.U.copy(), self.V.copy(), copy.deepcopy(self.cnn.state_dict()))
                else:
                    bad += 1
            self.history.append(row)
            log.info("ConvMF+ iteration %d: %s", it + 1, row)
            if valid is not None and bad >= self.patience:
                break
            if prev is not None and abs(obj - prev) / abs(prev) < self.tol:
                break
            prev = obj
        if best_state is not None:
            self.U, self.V = best_state[0], best_state[1]
            self.cnn.load_state_dict(best_state[2])
        return self

    def predict(self, users, items) -> np.ndarray:
        """``u_i^T v_j`` (+ the training mean with ``center``); the training mean for unseen users or items."""
        if self.U is None:
            raise RuntimeError("ConvMFPlus is not fitted; call fit() first")
        users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        if users.shape != items.shape:
            raise ValueError(f"users and items differ in shape: {users.shape} vs {items.shape}")
        pred = self.offset + np.einsum("nk,nk->n", self.U[users], self.V[items])
        known = self.seen_users[users] & self.seen_items[items]
        return np.where(known, pred, self.mu)
