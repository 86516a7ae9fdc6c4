"""The GRU / Embed recommenders of "Ask the GRU" (Bansal, Belanger & McCallum, RecSys 2016).

:class:`TextRecommender` trains :class:`~.net.TextRecNet` as in Sec. 4.1.2: every update samples
``batch_users`` users, one liked and one not-liked item per user, and minimises
``lambda * C_R + (1 - lambda) * C_T`` (Sec. 3.3; ``C_T`` only for the MTL variants) with Adam,
with the weighted squared loss ``C_R`` of eq. (2) (``c_ij`` of Sec. 4.1.2) plus an l2 penalty of
0.01 on the user embeddings, for at most ``max_updates`` updates with early stopping on the
validation Recall@M.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from ...progress import tqdm

from ...device import pick_device
from .._early_stopping import EarlyStopping
from .losses import confidence_weights, rating_loss, tag_loss
from .net import TextRecNet, build_encoder
from .ranking import topk_from_factors

log = logging.getLogger(__name__)


@dataclass
class Validation:
    """What early stopping ranks: per-user held-out likes among ``candidates``, ``exclude`` masked out."""

    users: np.ndarray  # (n,) user ids with at least one held-out like
    relevant: list[np.ndarray]  # held-out item ids per user
    exclude: sp.csr_matrix | None  # (n_users, n_items) items not to rank per user
    candidates: np.ndarray | None = None  # item ids to rank (None: all)


def pad_tokens(token_lists: Sequence[Sequence[int]], pad_id: int = 0, max_len: int | None = None) -> np.ndarray:
    """``(n, T)`` int array of token ids, right-padded with ``pad_id`` (truncated at ``max_len``)."""
    lists = [list(t)[:max_len] if max_len else list(t) for t in token_lists]
    width = max(1, max((len(t) for t in lists), default=1))
    out = np.full((len(lists), width), pad_id, dtype=np.int64)
    for i, t in enumerate(lists):
        out[i, :len(t)] = t
    return out


class TextRecommender:
    """GRU / Embed (and their ``-MTL`` variants) with the paper's training defaults.

    Parameters
    ----------
    encoder : {"gru", "embed"}
        Order-sensitive GRU encoder (Sec. 3.2) or mean of word embeddings (Sec. 3.1).
    k : int, default 200
        ``K = K_w = K_h2``.
    k_h1 : int, default 400
        First (bidirectional) GRU layer size per direction.
    dropout : tuple, default (0.1, 0.5, 0.3)
    mtl : bool, default False
        Add the tag-prediction task (``-MTL``).
    lam : float, default 0.5
        ``lambda`` in ``lambda C_R + (1 - lambda) C_T``; the paper calls it a hyperparameter
        without a value, 0.5 is our choice.
    alpha, eps : float, default 10, 1e-8
        ``c_ij = 1 + alpha log(1 + |R_i| / eps)``.
    tag_neg_weight : float, default 0.01
        ``c'`` down-weighting unobserved tags (not given in the paper).
    user_reg : float, default 0.01
        l2 weight on the user embeddings.
    batch_users : int, default 512
    lr : float, default 1e-3
        Adam's learning rate (not given in the paper; Adam's default).
    max_updates : int, default 20000
    eval_every : int, default 500
        Updates between two validation checks.
    patience : int, default 4
        Checks without improvement before stopping (the best weights are restored).
    eval_k : int, default 50
        Validation Recall@``eval_k`` drives early stopping.
    pretrained : ndarray, optional
        ``(vocab_size, k)`` CBOW word vectors.
    seed : int
    device : str, default "cpu"
    """

    def __init__(self, encoder: str = "gru", *, k: int = 200, k_h1: int = 400,
                 dropout: tuple[float, float, float] = (0.1, 0.5, 0.3), mtl: bool = False, lam: float = 0.5,
                 alpha: float = 10.0, eps: float = 1e-8, tag_neg_weight: float = 0.01, user_reg: float = 0.01,
                 batch_users: int = 512, lr: float = 1e-3, max_updates: int = 20000, eval_every: int = 500,
                 patience: int = 4, eval_k: int = 50, pretrained: np.ndarray | None = None, seed: int = 0,
                 device: str = "cpu", progress: bool = True) -> None:
        if encoder not in ("gru", "embed"):
            raise ValueError(f"Unknown encoder {encoder!r}; valid: 'gru', 'embed'")
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lam must be in [0, 1], got {lam}")
        self.encoder_kind, self.k, self.k_h1, self.dropout = encoder, k, k_h1, tuple(dropout)
        self.mtl, self.lam, self.alpha, self.eps = mtl, lam, alpha, eps
        self.tag_neg_weight, self.user_reg = tag_neg_weight, user_reg
        self.batch_users, self.lr, self.max_updates = batch_users, lr, max_updates
        self.eval_every, self.patience, self.eval_k = eval_every, patience, eval_k
        self.pretrained, self.seed, self.device, self.progress = pretrained, seed, pick_device(device), progress
        self.net: TextRecNet | None = None
        self.history: list[dict[str, float]] = []
        self.n_updates = 0

    @property
    def name(self) -> str:
        return ("GRU" if self.encoder_kind == "gru" else "Embed") + ("-MTL" if self.mtl else "")

    # ------------------------------------------------------------------ training
    def fit(self, likes: sp.spmatrix, tokens: np.ndarray, *, vocab_size: int, pad_id: int = 0,
            known: np.ndarray | None = None, tags: sp.spmatrix | None = None, tag_items: np.ndarray | None = None,
            valid: Validation | None = None) -> "TextRecommender":
        """Train on the ``(n_users, n_items)`` 0/1 like matrix.

        Parameters
        ----------
        likes : sparse (n_users, n_items)
            Training likes ``R``.
        tokens : int array (n_items, T)
            Every item's text, padded with ``pad_id`` (cold-start items included: their text is known).
        known : bool array (n_items,), optional
            Items with their own ``v_j``/``b_j`` and that negatives are sampled from; default: items with a like.
        tags : sparse (n_items, n_tags), optional
            0/1 item-tag matrix (required when ``mtl``).
        tag_items : bool array (n_items,), optional
            Items whose tags may be used in training (cold-start: not the test items); default ``known``.
        valid : Validation, optional
            Early stopping data; without it the model trains for ``max_updates`` updates.
        """
        likes = sp.csr_matrix(likes, dtype=np.float32)
        likes.eliminate_zeros()
        n_users, n_items = likes.shape
        if tokens.shape[0] != n_items:
            raise ValueError(f"tokens has {tokens.shape[0]} rows but likes has {n_items} items")
        if self.mtl and tags is None:
            raise ValueError(f"{self.name} needs a tags matrix (n_items x n_tags)")
        known = np.asarray(likes.sum(0)).ravel() > 0 if known is None else np.asarray(known, dtype=bool)
        tag_items = known if tag_items is None else np.asarray(tag_items, dtype=bool)
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        enc = build_encoder(self.encoder_kind, vocab_size, k=self.k, k_h1=self.k_h1, dropout=self.dropout,
                            pad_id=pad_id, pretrained=self.pretrained)
        self.net = TextRecNet(enc, n_users, n_items, known, n_tags=tags.shape[1] if self.mtl else 0).to(self.device)
        self.tokens, self.pad_id = np.asarray(tokens, dtype=np.int64), pad_id
        tag_csr = sp.csr_matrix(tags, dtype=np.float32) if self.mtl else None
        tag_ok = torch.as_tensor(tag_items, dtype=torch.float32)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)

        n_likes = np.diff(likes.indptr)
        active = np.flatnonzero(n_likes > 0)
        if active.size == 0:
            raise ValueError("no user has a training like")
        weights = torch.as_tensor(confidence_weights(n_likes, self.alpha, self.eps), dtype=torch.float32)
        neg_pool = np.flatnonzero(known)
        liked_keys = np.sort(np.repeat(np.arange(n_users, dtype=np.int64), n_likes) * n_items + likes.indices)

        stopper = EarlyStopping(self.patience, mode="max")
        self.history = []
        bar = tqdm(range(1, self.max_updates + 1), desc=self.name, disable=not self.progress, leave=False)
        for step in bar:
            self.net.train()
            users = rng.choice(active, size=min(self.batch_users, active.size), replace=False)  # (B,)
            pos = likes.indices[likes.indptr[users] + rng.integers(0, n_likes[users])]  # (B,)
            neg = self._sample_negatives(users, neg_pool, liked_keys, n_items, rng)  # (B,)
            items = np.concatenate([pos, neg])  # (2B,)
            u = torch.as_tensor(np.concatenate([users, users]), device=self.device)
            it = torch.as_tensor(items, device=self.device)
            target = torch.cat([torch.ones(len(users)), torch.zeros(len(users))]).to(self.device)
            f, b = self.net.item_repr(it, torch.as_tensor(self._batch_tokens(items), device=self.device))  # (2B, K)
            pred = self.net.rating(u, f, b)  # (2B,)
            loss_r = rating_loss(pred, target, weights[u.cpu()].to(self.device))
            loss_r = loss_r + self.user_reg * (self.net.user(u) ** 2).sum(-1).mean()
            loss = loss_r
            if self.mtl:
                sel = tag_ok[it.cpu()].bool()
                if sel.any():
                    t_true = torch.as_tensor(tag_csr[items[sel.numpy()]].toarray(), device=self.device)  # (b, N_t)
                    loss_t = tag_loss(self.net.tag_logits(f[sel.to(self.device)]), t_true, self.tag_neg_weight)
                    loss = self.lam * loss_r + (1.0 - self.lam) * loss_t
            opt.zero_grad()
            loss.backward()
            opt.step()
            self.n_updates = step
            if valid is not None and (step % self.eval_every == 0 or step == self.max_updates):
                rec, lv = self.recall(valid, self.eval_k), loss.item()
                self.history.append({"update": step, "loss": lv, "valid_recall": rec})
                log.info("%s update %d loss %.4f valid Recall@%d %.4f", self.name, step, lv, self.eval_k, rec)
                bar.set_postfix(loss=f"{lv:.3f}", recall=f"{rec:.4f}")
                if stopper.step(rec, self.net):
                    break
        stopper.restore(self.net)
        self.best_valid_recall = float(stopper.best) if stopper.improved_once else float("nan")
        return self

    @staticmethod
    def _sample_negatives(users: np.ndarray, pool: np.ndarray, liked_keys: np.ndarray, n_items: int,
                          rng: np.random.Generator, max_tries: int = 50) -> np.ndarray:
        """One item per user drawn uniformly from ``pool`` among the items the user has not liked."""
        neg = pool[rng.integers(0, pool.size, size=users.size)]
        for _ in range(max_tries):
            keys = users.astype(np.int64) * n_items + neg
            pos = np.searchsorted(liked_keys, keys)
            clash = (pos < liked_keys.size) & (liked_keys[np.minimum(pos, liked_keys.size - 1)] == keys)
            if not clash.any():
                break
            neg[clash] = pool[rng.integers(0, pool.size, size=int(clash.sum()))]
        return neg

    def _batch_tokens(self, items: np.ndarray) -> np.ndarray:
        tok = self.tokens[items]  # (B, T)
        width = max(1, int((tok != self.pad_id).sum(1).max()))
        return tok[:, :width]

    # ------------------------------------------------------------------ inference
    def _check(self) -> TextRecNet:
        if self.net is None:
            raise RuntimeError(f"{self.name} is not fitted; call fit() first")
        return self.net

    @torch.no_grad()
    def item_vectors(self, items: np.ndarray | None = None, batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """``f(X_j)`` ``(n, K)`` and ``b_j`` ``(n,)`` in eval mode (zero ``v_j``, ``b_j`` for cold items)."""
        net = self._check()
        net.eval()
        items = np.arange(self.tokens.shape[0]) if items is None else np.asarray(items, dtype=np.int64)
        fs, bs = [], []
        for s in range(0, len(items), batch):
            it = items[s:s + batch]
            f, b = net.item_repr(torch.as_tensor(it, device=self.device),
                                 torch.as_tensor(self._batch_tokens(it), device=self.device))
            fs.append(f.cpu().numpy())
            bs.append(b.cpu().numpy())
        k = net.encoder.out_dim
        return (np.concatenate(fs) if fs else np.zeros((0, k), np.float32)), (np.concatenate(bs) if bs else np.zeros(0, np.float32))

    def user_vectors(self, users: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``u_i`` ``(n, K)`` and ``b_i`` ``(n,)``."""
        net = self._check()
        w, b = net.user.weight.detach().cpu().numpy(), net.user_bias.weight.detach().cpu().numpy()[:, 0]
        return (w, b) if users is None else (w[users], b[users])

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Predicted ``r_ij`` ``(len(users), n_items)`` (eq. 3-4)."""
        f, bj = self.item_vectors(items)
        u, bi = self.user_vectors(np.asarray(users))
        return bi[:, None] + bj[None, :] + u @ f.T

    def topk(self, users: np.ndarray, k: int, *, candidates: np.ndarray | None = None,
             exclude: sp.spmatrix | None = None) -> np.ndarray:
        """Top-``k`` items per user among ``candidates`` with ``exclude`` (rows = ``users``) masked out."""
        f, bj = self.item_vectors()
        u, _ = self.user_vectors(np.asarray(users))
        return topk_from_factors(u, f, bj, k, candidates=candidates, exclude=exclude)

    def recall(self, valid: Validation, k: int) -> float:
        """Mean per-user Recall@k on ``valid``."""
        top = self.topk(valid.users, k, candidates=valid.candidates,
                        exclude=valid.exclude[valid.users] if valid.exclude is not None else None)
        hits = [len(set(row.tolist()) & set(rel.tolist())) / len(rel) for row, rel in zip(top, valid.relevant)]
        return float(np.mean(hits)) if hits else float("nan")

    @torch.no_grad()
    def tag_scores(self, items: np.ndarray) -> np.ndarray:
        """``f(X_j)^T t_l`` ``(len(items), n_tags)`` (the logits of ``p_jl``)."""
        net = self._check()
        if net.tag is None:
            raise RuntimeError(f"{self.name} has no tag head (mtl=False)")
        f, _ = self.item_vectors(items)
        return f @ net.tag.weight.detach().cpu().numpy().T

    def saliency(self, user: int, item: int) -> np.ndarray:
        """``||d r_ij / d e_{j,t}||`` for every word ``t`` of item ``j``'s text (Sec. 4.3), eval mode."""
        from .saliency import word_saliency

        net = self._check()
        tok = self.tokens[item]
        tok = tok[tok != self.pad_id]
        return word_saliency(net, user, item, tok, device=self.device)
