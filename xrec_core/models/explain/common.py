"""Shared pieces of the explanation generators: batches, vocabulary ids, masks, greedy decoding.

Every generator (NRT, Att2Seq, NETE, PETER, MVAE and its ablations) is a ``torch.nn.Module``
with the same interface:

* ``loss(batch) -> dict`` with ``"loss"`` (the objective minimised), ``"nll"`` (mean negative
  log-likelihood per target token) and model-specific terms;
* ``generate(batch, max_len) -> LongTensor (B, L)`` greedy decoding (stops at ``<EOS>``);
* ``on_step(step)`` called by the trainer before every optimisation step (annealing schedules).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class TextSpec:
    """Vocabulary size and the ids of the special tokens."""

    vocab_size: int
    pad_id: int
    bos_id: int
    eos_id: int


@dataclass
class ExplanationBatch:
    """One mini-batch. ``seq`` is ``[<BOS>, w_1 .. w_n, <EOS>, <PAD> ..]``."""

    user: torch.Tensor       # (B,) long
    item: torch.Tensor       # (B,) long
    rating: torch.Tensor     # (B,) float, the raw rating
    sentiment: torch.Tensor  # (B,) long, 1 when rating >= 3 (Sec. 4.4)
    feature: torch.Tensor    # (B,) long, word id of the explanation's feature
    seq: torch.Tensor        # (B, T) long

    def to(self, device: torch.device) -> "ExplanationBatch":
        return ExplanationBatch(*(t.to(device) for t in (self.user, self.item, self.rating, self.sentiment, self.feature, self.seq)))

    def __len__(self) -> int:
        return int(self.user.shape[0])


def token_nll(logits: torch.Tensor, target: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed NLL per sentence ``(B,)`` and the number of target tokens ``(B,)``, ignoring padding."""
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=pad_id, reduction="none")
    nll = nll.view(target.shape)  # (B, T)
    return nll.sum(1), (target != pad_id).sum(1)


def causal_mask(n: int, device: torch.device) -> torch.Tensor:
    """``(n, n)`` bool mask, True where attention is NOT allowed (future positions)."""
    return torch.triu(torch.ones(n, n, dtype=torch.bool, device=device), diagonal=1)


def strip_special(ids: list[int], spec: TextSpec) -> list[int]:
    """Cut at the first ``<EOS>`` and drop ``<BOS>``/``<PAD>``."""
    out = []
    for t in ids:
        if t == spec.eos_id:
            break
        if t not in (spec.bos_id, spec.pad_id):
            out.append(t)
    return out


class ExplanationGenerator(nn.Module):
    """Base class: the common interface (see module docstring)."""

    spec: TextSpec

    def loss(self, batch: ExplanationBatch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def on_step(self, step: int) -> None:
        """Hook called before each optimisation step; most models need nothing."""

    def _greedy(self, step_fn, batch_size: int, max_len: int, device: torch.device) -> torch.Tensor:
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
