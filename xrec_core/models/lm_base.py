"""Shared plumbing of the MT chapter's language-model baselines (n-gram, skip-gram, LSTM, GCN).

Every baseline language model has the same interface:

* ``fit(train_token_lists, users=None, items=None) -> self``
* ``perplexity(token_lists, users=None, items=None) -> float``
* ``generate(users, items, max_len=30, seed=0) -> list[list[str]]``

and the same token accounting, so their perplexities are comparable (MT paper, Table 3): a review
``w_1 .. w_n`` is mapped through the shared :class:`~xrec_core.data.text.Vocabulary` (words
outside it become ``<UNK>``), the model predicts ``w_1 .. w_n, <EOS>`` from the history that starts
with ``<BOS>``, and the predictive distribution covers every vocabulary entry except ``<PAD>`` and
``<BOS>`` (which are never targets). A uniform model therefore has perplexity
``len(vocab) - 2`` -- :attr:`TokenLM.n_outputs`.

Generation samples each next word from the model's distribution (MT paper Sec. 3.1.1 samples the
decoder's multinomial the same way) with ``<UNK>`` excluded, until ``<EOS>`` or ``max_len`` words.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

Tokens = Sequence[str]


class TokenLM:
    """Base class: vocabulary ids, target encoding, the output mask and input checks.

    Parameters
    ----------
    vocab : xrec_core.data.text.Vocabulary
        The vocabulary shared by every model of a fold (built on the fold's training reviews).
    """

    def __init__(self, vocab) -> None:
        self.vocab = vocab
        self.vocab_size = len(vocab)
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = vocab.pad_id, vocab.unk_id, vocab.bos_id, vocab.eos_id
        #: True where a token can be predicted (everything but <PAD> and <BOS>).
        self.output_mask = np.ones(self.vocab_size, dtype=bool)
        self.output_mask[[self.pad_id, self.bos_id]] = False
        self.fitted = False

    @property
    def n_outputs(self) -> int:
        """Size of the predictive distribution (vocabulary minus ``<PAD>`` and ``<BOS>``)."""
        return int(self.output_mask.sum())

    def encode(self, token_lists: Sequence[Tokens]) -> list[np.ndarray]:
        """Target id arrays ``[w_1 .. w_n, <EOS>]`` (``<UNK>`` for words outside the vocabulary)."""
        if isinstance(token_lists, str) or any(isinstance(t, str) for t in token_lists):
            raise TypeError("token_lists must be a list of token lists (list[list[str]]), not strings")
        return [np.asarray(list(self.vocab.encode(list(toks))) + [self.eos_id], dtype=np.int64) for toks in token_lists]

    def decode(self, ids: Sequence[int]) -> list[str]:
        """Words of a generated id sequence, stopping before ``<EOS>`` (``Vocabulary.decode`` does)."""
        return list(self.vocab.decode(ids))

    def log_unigram(self, token_lists: Sequence[Tokens]) -> np.ndarray:
        """``(V,)`` log add-one unigram frequencies of the targets: the output bias at initialisation."""
        counts = np.bincount(np.concatenate(self.encode(token_lists)), minlength=self.vocab_size) + 1.0
        return np.log(counts / counts.sum())

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")

    @staticmethod
    def _n_requests(users, items) -> int:
        sizes = {len(x) for x in (users, items) if x is not None}
        if not sizes:
            raise ValueError("generate() needs users or items (one explanation per entry)")
        if len(sizes) > 1:
            raise ValueError(f"users and items differ in length: {sorted(sizes)}")
        return sizes.pop()


def _take(ids: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if ids is None else ids[rows]


class NeuralTokenLM(TokenLM):
    """Training, perplexity and sampling shared by the torch language models.

    Subclasses implement :meth:`_build_net` returning a module with ``features(inp, users, items)
    -> (B, T, H)`` and ``logits(features) -> (B, T, V)``; ``users``/``items`` are ``(B,)`` id
    tensors or ``None``. Training minimises the mean token cross-entropy with Adam through
    :class:`~xrec_core.training.Trainer`: the validation perplexity is measured after every epoch,
    training stops after ``patience`` epochs without improvement and the best epoch's weights are
    kept (:meth:`fit`).

    Parameters
    ----------
    vocab : Vocabulary
        Shared vocabulary.
    epochs : int
        Epoch cap (early stopping normally ends training before it).
    batch_size, lr, grad_clip : training schedule (Adam, gradient-norm clipping).
    valid_frac : float
        Held-out share of the training reviews for early stopping when :meth:`fit` gets no ``valid``.
    patience : int
        Epochs without held-out improvement before stopping.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    seed : int
        Seeds the initialisation, the held-out split and the batch order.
    """

    #: whether the model reads user / item ids
    uses_users = False
    uses_items = False

    def __init__(self, vocab, *, epochs: int = 10, batch_size: int = 32, lr: float = 1e-3, grad_clip: float = 5.0,
                 valid_frac: float = 0.1, patience: int = 2, device: str = "auto", seed: int = 0) -> None:
        super().__init__(vocab)
        if epochs < 1 or batch_size < 1 or lr <= 0:
            raise ValueError(f"need epochs >= 1, batch_size >= 1, lr > 0; got {epochs}, {batch_size}, {lr}")
        if not 0.0 <= valid_frac < 1.0:
            raise ValueError(f"valid_frac must be in [0, 1), got {valid_frac}")
        self.epochs, self.batch_size, self.lr, self.grad_clip = epochs, batch_size, lr, grad_clip
        self.valid_frac, self.patience, self.seed = valid_frac, patience, seed
        self.device_name = device
        self.curve = None  # xrec_core.training.LearningCurve of the last fit

    # -- subclass hooks --------------------------------------------------------------------
    def _build_net(self, n_users: int, n_items: int, train_token_lists: Sequence[Tokens]):
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------------
    def _ids(self, ids, n: int, name: str, bound: int | None) -> np.ndarray | None:
        if ids is None:
            return None
        arr = np.asarray(ids, dtype=np.int64)
        if arr.shape != (n,):
            raise ValueError(f"{name} must have one id per review ({n}), got shape {arr.shape}")
        if arr.size and (arr.min() < 0 or (bound is not None and arr.max() >= bound)):
            raise ValueError(f"{name} ids must lie in [0, {bound}) (ids seen in training)")
        return arr

    def _conditions(self, n: int, users, items, fitting: bool = False):
        if self.uses_users and users is None:
            raise ValueError(f"{type(self).__name__} needs users")
        if self.uses_items and items is None:
            raise ValueError(f"{type(self).__name__} needs items")
        u = self._ids(users, n, "users", None if fitting else self.n_users) if self.uses_users else None
        i = self._ids(items, n, "items", None if fitting else self.n_items) if self.uses_items else None
        return u, i

    def _batches(self, seqs: list[np.ndarray], order: np.ndarray, u, i):
        import torch

        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            T = max(len(seqs[k]) for k in idx)
            tgt = np.full((len(idx), T), self.pad_id, dtype=np.int64)  # (B, T)
            for r, k in enumerate(idx):
                tgt[r, : len(seqs[k])] = seqs[k]
            inp = np.concatenate([np.full((len(idx), 1), self.bos_id), tgt[:, :-1]], 1)  # (B, T)
            inp[inp == self.eos_id] = self.pad_id  # nothing is read after <EOS>
            yield (torch.from_numpy(inp).to(self.device), torch.from_numpy(tgt).to(self.device),
                   None if u is None else torch.from_numpy(u[idx]).to(self.device),
                   None if i is None else torch.from_numpy(i[idx]).to(self.device))

    def _length_batches(self, seqs, rng: np.random.Generator | None) -> np.ndarray:
        """Indices ordered so that a batch holds reviews of similar length (shuffled batch order)."""
        order = np.argsort([len(s) for s in seqs], kind="stable")
        chunks = [order[k:k + self.batch_size] for k in range(0, len(order), self.batch_size)]
        if rng is not None:
            chunks = [chunks[j] for j in rng.permutation(len(chunks))]
        return np.concatenate(chunks) if chunks else order

    def _masked_logits(self, feats):
        logits = self.net.logits(feats)  # (B, T, V)
        return logits.masked_fill(self._blocked, float("-inf"))

    def _nll(self, seqs, u, i) -> tuple[float, int]:
        import torch
        from torch.nn import functional as F

        self.net.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for inp, tgt, bu, bi in self._batches(seqs, self._length_batches(seqs, None), u, i):
                logits = self._masked_logits(self.net.features(inp, bu, bi))  # (B, T, V)
                nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=self.pad_id,
                                      reduction="sum")
                total += float(nll)
                count += int((tgt != self.pad_id).sum())
        return total, count

    # -- public API ------------------------------------------------------------------------
    def fit(self, train_token_lists: Sequence[Tokens], users=None, items=None,
            valid: tuple[Sequence[Tokens], Any, Any] | None = None) -> "NeuralTokenLM":
        """Train on the reviews ``train_token_lists`` (with their ``users``/``items`` ids when conditioned).

        Training runs through :class:`~xrec_core.training.Trainer` until the validation perplexity
        has not improved for ``patience`` epochs (cap ``epochs``); the best epoch's weights are
        kept and the learning curve is :attr:`curve`. ``valid`` = ``(token_lists, users, items)``
        are the validation reviews (the chapter passes the split carved from its training fold);
        without it a ``valid_frac`` share of ``train_token_lists`` is held out.
        """
        import torch
        from torch.nn import functional as F

        from ..device import pick_device
        from ..metrics.language import perplexity_from_nll
        from ..training import Trainer

        seqs = self.encode(train_token_lists)
        if len(seqs) < 2:
            raise ValueError(f"{type(self).__name__} needs at least two training reviews")
        u, i = self._conditions(len(seqs), users, items, fitting=True)
        rng = np.random.default_rng(self.seed)
        if valid is None:
            if self.valid_frac <= 0:
                raise ValueError(f"{type(self).__name__} needs validation reviews (valid=...) or valid_frac > 0")
            perm = rng.permutation(len(seqs))
            n_valid = max(1, int(round(self.valid_frac * len(seqs))))
            tr, va = perm[n_valid:], perm[:n_valid]
            tr_seqs, va_seqs = [seqs[k] for k in tr], [seqs[k] for k in va]
            tr_u, tr_i, va_u, va_i = _take(u, tr), _take(i, tr), _take(u, va), _take(i, va)
        else:
            tr_seqs, tr_u, tr_i = seqs, u, i
            va_seqs = self.encode(valid[0])
            va_u, va_i = self._conditions(len(va_seqs), valid[1], valid[2], fitting=True)
        # ids seen in training or validation get a vector (validation users are training users in the chapter)
        self.n_users = 1 + max(int(ids.max()) for ids in (tr_u, va_u) if ids is not None and ids.size) if tr_u is not None else 0
        self.n_items = 1 + max(int(ids.max()) for ids in (tr_i, va_i) if ids is not None and ids.size) if tr_i is not None else 0
        self.device = pick_device(self.device_name)
        torch.manual_seed(self.seed)
        self.net = self._build_net(self.n_users, self.n_items, train_token_lists).to(self.device)
        self._blocked = torch.from_numpy(~self.output_mask).to(self.device)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)

        def step(batch) -> torch.Tensor:
            inp, tgt, bu, bi = batch
            logits = self._masked_logits(self.net.features(inp, bu, bi))  # (B, T, V)
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=self.pad_id)

        trainer = Trainer(max_epochs=self.epochs, patience=self.patience, grad_clip=self.grad_clip, device=self.device,
                          valid_metric="validation perplexity", desc=type(self).__name__)
        self.curve = trainer.fit(
            self.net, optimizer=opt, step=step,
            batches=lambda epoch: self._batches(tr_seqs, self._length_batches(tr_seqs, rng), tr_u, tr_i),
            validate=lambda: perplexity_from_nll(*self._nll(va_seqs, va_u, va_i)))
        self.fitted = True
        return self

    def perplexity(self, token_lists: Sequence[Tokens], users=None, items=None) -> float:
        """``exp`` of the mean NLL per token (words + ``<EOS>``) of ``token_lists``."""
        from ..metrics.language import perplexity_from_nll

        self._check_fitted()
        seqs = self.encode(token_lists)
        u, i = self._conditions(len(seqs), users, items)
        return perplexity_from_nll(*self._nll(seqs, u, i))

    def generate(self, users=None, items=None, max_len: int = 30, seed: int = 0,
                 batch_size: int = 256, min_len: int = 0) -> list[list[str]]:
        """Sample one review per entry of ``users``/``items`` (``<UNK>`` excluded), up to ``max_len`` words,
        ``<EOS>`` barred before ``min_len`` words."""
        import torch

        self._check_fitted()
        n = self._n_requests(users, items)
        u, i = self._conditions(n, users, items)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        blocked = self._blocked.clone()
        blocked[self.unk_id] = True
        too_short = blocked.clone()  # (V,) what may not be drawn before min_len words
        too_short[self.eos_id] = True
        self.net.eval()
        out: list[list[str]] = []
        with torch.no_grad():
            for start in range(0, n, batch_size):
                sl = slice(start, min(n, start + batch_size))
                bu = None if u is None else torch.from_numpy(u[sl]).to(self.device)
                bi = None if i is None else torch.from_numpy(i[sl]).to(self.device)
                B = sl.stop - sl.start
                seq = torch.full((B, 1), self.bos_id, dtype=torch.long, device=self.device)  # (B, 1+t)
                done = torch.zeros(B, dtype=torch.bool, device=self.device)
                for step in range(max_len):
                    logits = self.net.logits(self.net.features(seq, bu, bi)[:, -1:])[:, 0]  # (B, V)
                    probs = torch.softmax(logits.masked_fill(too_short if step < min_len else blocked, float("-inf")), -1)
                    nxt = torch.multinomial(probs.cpu(), 1, generator=gen).to(self.device)[:, 0]  # (B,)
                    nxt = torch.where(done, torch.full_like(nxt, self.eos_id), nxt)
                    done |= nxt == self.eos_id
                    seq = torch.cat([seq, nxt[:, None]], 1)
                    if bool(done.all()):
                        break
                out.extend(self.decode(row[1:].tolist()) for row in seq.cpu())
        return out
