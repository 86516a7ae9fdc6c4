"""NRT (Li et al., SIGIR 2017): neural rating regression with abstractive tips generation.

An MLP regresses the rating from the user and item embeddings; a GRU, initialised from
``tanh(W [E_u; E_i])``, generates the tip (here: the explanation sentence, as in the MVAE paper,
Sec. 4.3). Objective: NLL + ``rating_reg`` x MSE. NRT's extra bag-of-words "context" loss of
its published code is omitted; the MVAE paper describes NRT only by the two tasks above.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .common import ExplanationBatch, ExplanationGenerator, TextSpec, token_nll


class NRT(ExplanationGenerator):
    """NRT generator (rating MLP + GRU tip decoder).

    Parameters
    ----------
    d_emb : int
        User, item and word embedding size (300 in NRT).
    d_hidden : int
        GRU size (400 in NRT).
    rating_reg : float
        Weight of the rating MSE.
    """

    def __init__(self, n_users: int, n_items: int, spec: TextSpec, *, d_emb: int = 300, d_hidden: int = 400,
                 rating_reg: float = 0.1, dropout: float = 0.2) -> None:
        super().__init__()
        self.spec, self.rating_reg = spec, rating_reg
        self.user_emb, self.item_emb = nn.Embedding(n_users, d_emb), nn.Embedding(n_items, d_emb)
        self.word_emb = nn.Embedding(spec.vocab_size, d_emb, padding_idx=spec.pad_id)
        self.rating_mlp = nn.Sequential(nn.Linear(2 * d_emb, d_hidden), nn.Sigmoid(), nn.Linear(d_hidden, 1))
        self.init = nn.Linear(2 * d_emb, d_hidden)
        self.gru = nn.GRU(d_emb, d_hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(d_hidden, spec.vocab_size)

    def _ui(self, batch: ExplanationBatch) -> torch.Tensor:
        return torch.cat([self.user_emb(batch.user), self.item_emb(batch.item)], -1)  # (B, 2E)

    def _logits(self, ui: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        h0 = torch.tanh(self.init(ui))[None]  # (1, B, H)
        out, _ = self.gru(self.drop(self.word_emb(tokens)), h0)
        return self.out(self.drop(out))  # (B, L, V)

    def loss(self, batch: ExplanationBatch) -> dict[str, torch.Tensor]:
        ui = self._ui(batch)
        nll_sum, n_tok = token_nll(self._logits(ui, batch.seq[:, :-1]), batch.seq[:, 1:], self.spec.pad_id)
        nll = nll_sum.sum() / n_tok.sum()
        mse = F.mse_loss(self.rating_mlp(ui).squeeze(-1), batch.rating)
        return {"loss": nll + self.rating_reg * mse, "nll": nll, "rating_mse": mse}

    @torch.no_grad()
    def generate(self, batch: ExplanationBatch, max_len: int = 20) -> torch.Tensor:
        ui = self._ui(batch)
        return self._greedy(lambda toks: self._logits(ui, toks)[:, -1], len(batch), max_len, ui.device)
