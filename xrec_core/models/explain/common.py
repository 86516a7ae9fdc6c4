"""Shared pieces of the explanation generators: batches, vocabulary ids, masks, positions, decoding
and the one training loop every generator of the MVAE chapter uses.

Every generator (NRT, Att2Seq, NETE, PETER, MVAE and its ablations, the plain VAE of Fig. 4) is an
:class:`ExplanationGenerator`, a ``torch.nn.Module`` with

* ``loss(batch) -> dict`` with ``"loss"`` (the objective minimised), ``"nll"`` (mean negative
  log-likelihood per target token) and model-specific terms;
* ``decode(batch, max_len) -> LongTensor (B, L)``: greedy decoding (stops at ``<EOS>``);
* ``on_step(step)``: called before every optimisation step (annealing schedules);

and the registry's generator interface (:mod:`xrec_core.models.registry`): ``fit(train, valid)``
trains it with :class:`xrec_core.training.Trainer` until the validation NLL stops improving, and
``generate(part)`` writes one sentence per (user, item) pair of a data part.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn
from torch.nn import functional as F

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextSpec:
    """Vocabulary size, the ids of the special tokens and (for writing text) the words by id."""

    vocab_size: int
    pad_id: int
    bos_id: int
    eos_id: int
    words: tuple[str, ...] = ()


@dataclass
class ExplanationBatch:
    """One mini-batch. ``seq`` is ``[<BOS>, w_1 .. w_n, <EOS>, <PAD> ..]``."""

    user: torch.Tensor       # (B,) long
    item: torch.Tensor       # (B,) long
    rating: torch.Tensor     # (B,) float, the raw rating
    sentiment: torch.Tensor  # (B,) long, 1 when rating >= 3 (Sec. 4.4)
    feature: torch.Tensor    # (B,) long, word id of the explanation's feature
    seq: torch.Tensor        # (B, T) long

    def to(self, device: torch.device | str) -> "ExplanationBatch":
        return ExplanationBatch(*(t.to(device) for t in (self.user, self.item, self.rating, self.sentiment, self.feature, self.seq)))

    def __len__(self) -> int:
        return int(self.user.shape[0])


class ExplanationPart(Protocol):
    """What ``fit`` and ``generate`` read: a data part that yields :class:`ExplanationBatch` es."""

    def __len__(self) -> int: ...

    def batches(self, batch_size: int, shuffle: bool = False, seed: int = 0) -> Iterator[ExplanationBatch]: ...


@dataclass(frozen=True)
class TrainingSettings:
    """How every generator of the chapter is trained (all values come from the chapter config).

    AdamW with a linear warm-up over ``warmup_steps``, global gradient-norm clipping ``clip``, the
    paper's learning-rate rule (Sec. 4.4: multiply by ``lr_decay`` when the validation loss falls
    by less than ``1 - decay_threshold`` in an epoch) and early stopping on the validation NLL per
    token (``patience`` epochs without improvement, at most ``max_epochs``).
    """

    lr: float
    warmup_steps: int
    clip: float
    lr_decay: float
    decay_threshold: float
    batch_size: int
    max_epochs: int
    patience: int
    max_words: int
    seed: int
    device: str


def token_nll(logits: torch.Tensor, target: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed NLL per sentence ``(B,)`` and the number of target tokens ``(B,)``, ignoring padding."""
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=pad_id, reduction="none")
    nll = nll.view(target.shape)  # (B, T)
    return nll.sum(1), (target != pad_id).sum(1)


def projected_token_nll(hidden: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                        pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`token_nll` of ``logits = hidden @ weight.T + bias``, computed for the non-padding targets only.

    The vocabulary projection and its softmax are most of a generator's training step; projecting only
    the rows whose target is a word (one fused ``addmm``) gives the same sums as projecting every
    position and masking the padding afterwards. ``hidden`` is ``(B, T, d)``, ``target`` ``(B, T)``.
    """
    keep = target != pad_id  # (B, T)
    rows = hidden[keep]  # (N, d): the positions with a word to predict
    nll = F.cross_entropy(F.linear(rows, weight, bias), target[keep], reduction="none")  # (N,)
    sentence = torch.arange(target.shape[0], device=target.device)[:, None].expand_as(target)[keep]
    return torch.zeros(target.shape[0], dtype=nll.dtype, device=nll.device).index_add_(0, sentence, nll), keep.sum(1)


def causal_mask(n: int, device: torch.device) -> torch.Tensor:
    """``(n, n)`` bool mask, True where attention is NOT allowed (future positions)."""
    return torch.triu(torch.ones(n, n, dtype=torch.bool, device=device), diagonal=1)


class SinusoidalPositions(nn.Module):
    """Fixed sine/cosine position vectors (Vaswani et al. 2017), as in PETER's code.

    ``PE(pos, 2i) = sin(pos / 10000^(2i/d))``, ``PE(pos, 2i+1) = cos(pos / 10000^(2i/d))``; every
    entry lies in [-1, 1], the scale of the ``sqrt(d)``-scaled token embeddings they are added to.
    A learned ``nn.Embedding`` left at its N(0, 1) start instead is ~17x larger than uniform(-0.1, 0.1)
    word vectors at d = 96 and drowns the user, item and word signal early in training.
    """

    def __init__(self, d_model: int, max_len: int) -> None:
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32)[:, None]  # (L, 1)
        rate = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))  # (d/2,)
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * rate)
        pe[:, 1::2] = torch.cos(position * rate)[:, : d_model // 2]
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, n: int) -> torch.Tensor:  # -> (n, d)
        return self.pe[:n]


def strip_special(ids: Sequence[int], spec: TextSpec) -> list[int]:
    """Cut at the first ``<EOS>`` and drop ``<BOS>``/``<PAD>``."""
    out = []
    for t in ids:
        if t == spec.eos_id:
            break
        if t not in (spec.bos_id, spec.pad_id):
            out.append(t)
    return out


@torch.no_grad()
def mean_token_nll(model: "ExplanationGenerator", part: ExplanationPart, batch_size: int, device: torch.device) -> float:
    """Mean NLL per token of ``part`` in the model's current mode (eval: test-phase architecture for MVAE)."""
    total, n = 0.0, 0
    for batch in part.batches(batch_size):
        batch = batch.to(device)
        n_tok = int((batch.seq[:, 1:] != model.spec.pad_id).sum())
        total += float(model.loss(batch)["nll"]) * n_tok
        n += n_tok
    return total / max(n, 1)


class ExplanationGenerator(nn.Module):
    """Base class: the common interface (see module docstring) and the training loop.

    After :meth:`fit`, ``curve`` is the :class:`~xrec_core.training.LearningCurve` (objective per
    epoch, validation NLL per token) and ``train_nll`` the training NLL per token of each epoch
    (Fig. 6 (a) plots it beside the validation NLL).
    """

    spec: TextSpec
    training_settings: TrainingSettings

    def __init__(self, spec: TextSpec, training: TrainingSettings) -> None:
        super().__init__()
        self.spec, self.training_settings = spec, training
        self.curve: Any = None
        self.train_nll: list[float] = []

    # ------------------------------------------------------------------ model-specific
    def loss(self, batch: ExplanationBatch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def decode(self, batch: ExplanationBatch, max_len: int) -> torch.Tensor:
        raise NotImplementedError

    def on_step(self, step: int) -> None:
        """Hook called before each optimisation step; most models need nothing."""

    # ------------------------------------------------------------------ training and generation
    def fit(self, train: ExplanationPart, valid: ExplanationPart,
            report: Callable[[int, float], None] | None = None) -> "ExplanationGenerator":
        """Train on ``train`` until the NLL per token on ``valid`` stops improving; keep the best epoch.

        ``report(epoch, valid_nll)`` is called after every epoch (an Optuna trial's pruning hook).
        """
        from ...device import pick_device
        from ...training import Trainer

        s = self.training_settings
        device = pick_device(s.device)
        self.to(device)
        optimizer = torch.optim.AdamW(self.parameters(), lr=s.lr, foreach=True)  # one kernel per op for all tensors (MVAE has ~200)
        state = {"step": 0, "lr": s.lr, "previous": math.inf, "nll": []}

        def step(batch: ExplanationBatch) -> torch.Tensor:
            self.on_step(state["step"])
            warm = min(1.0, (state["step"] + 1) / max(s.warmup_steps, 1))
            for group in optimizer.param_groups:
                group["lr"] = state["lr"] * warm
            state["step"] += 1
            out = self.loss(batch.to(device))
            state["nll"].append(float(out["nll"].detach()))
            return out["loss"]

        def on_epoch(epoch: int, valid_nll: float) -> None:
            self.train_nll.append(sum(state["nll"]) / max(len(state["nll"]), 1))
            state["nll"] = []
            if valid_nll / state["previous"] > s.decay_threshold:  # Sec. 4.4: the validation loss fell by < 2%
                state["lr"] *= s.lr_decay
            state["previous"] = valid_nll
            if report is not None:
                report(epoch, valid_nll)

        self.train_nll = []
        trainer = Trainer(max_epochs=s.max_epochs, patience=s.patience, mode="min", grad_clip=s.clip, device=device,
                          valid_metric="validation NLL per token", desc=type(self).__name__)
        self.curve = trainer.fit(self, batches=lambda epoch: train.batches(s.batch_size, shuffle=True, seed=s.seed * 1000 + epoch),
                                 step=step, validate=lambda: mean_token_nll(self, valid, s.batch_size, device),
                                 optimizer=optimizer, on_epoch=on_epoch)
        return self

    @torch.no_grad()
    def generate(self, part: ExplanationPart) -> list[str]:
        """One explanation per row of ``part`` (greedy decoding, at most ``max_words`` words), as text."""
        if not self.spec.words:
            raise ValueError("TextSpec.words is empty: the generator cannot write text without its vocabulary")
        s = self.training_settings
        device = next(self.parameters()).device
        self.eval()
        out = []
        for batch in part.batches(s.batch_size):
            for row in self.decode(batch.to(device), s.max_words).cpu().tolist():
                out.append(" ".join(self.spec.words[t] for t in strip_special(row, self.spec)))
        return out

    def _greedy(self, step_fn: Callable[[torch.Tensor], torch.Tensor], batch_size: int, max_len: int,
                device: torch.device) -> torch.Tensor:
        """Greedy decoding with ``step_fn(prev_tokens (B, t)) -> logits (B, V)`` of the next token."""
        tokens = torch.full((batch_size, 1), self.spec.bos_id, dtype=torch.long, device=device)
        done = torch.zeros(batch_size, dtype=torch.bool, device=device)
        for _ in range(max_len):
            nxt = step_fn(tokens).argmax(-1)  # (B,)
            nxt = torch.where(done, torch.full_like(nxt, self.spec.pad_id), nxt)
            tokens = torch.cat([tokens, nxt[:, None]], 1)
            done |= nxt == self.spec.eos_id
            if bool(done.all()):
                break
        return tokens[:, 1:]
