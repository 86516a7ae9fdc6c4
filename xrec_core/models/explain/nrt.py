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

from ...search_space import Categorical, Float, LogFloat
from ..registry import GENERATION, register
from .common import ExplanationBatch, ExplanationGenerator, TextSpec, TrainingSettings, token_nll


@register("NRT", role=GENERATION, source="Li et al., SIGIR 2017", search_space={
    "lr": LogFloat(1e-4, 1e-2), "dropout": Float(0.0, 0.5), "d_hidden": Categorical((48, 96, 192, 400)),
    "rating_reg": LogFloat(1e-2, 1.0)})
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
    dropout : float
        Dropout on the word inputs and the GRU outputs.
    training : TrainingSettings
    """

    def __init__(self, n_users: int, n_items: int, spec: TextSpec, *, d_emb: int, d_hidden: int, rating_reg: float,
                 dropout: float, training: TrainingSettings) -> None:
        super().__init__(spec, training)
        self.rating_reg = rating_reg
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
    def decode(self, batch: ExplanationBatch, max_len: int) -> torch.Tensor:
        ui = self._ui(batch)
        return self._greedy(lambda toks: self._logits(ui, toks)[:, -1], len(batch), max_len, ui.device)
