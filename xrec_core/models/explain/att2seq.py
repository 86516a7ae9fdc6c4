"""Att2Seq (Dong et al., EACL 2017): attribute-to-sequence generation with attention.

The attributes (user, item, rating -- here the binary sentiment) are embedded; an MLP
``tanh(W [a_u; a_i; a_r])`` initialises every layer of a two-layer LSTM decoder, and at each
step the decoder attends over the three attribute vectors (Eqs. 4-7 of Att2Seq):
``p(w_t) = softmax(W_o tanh(W_1 h_t + W_2 c_t))``.
"""

from __future__ import annotations

import torch
from torch import nn

from ...search_space import Categorical, Float, LogFloat
from ..registry import GENERATION, register
from .common import ExplanationBatch, ExplanationGenerator, TextSpec, TrainingSettings, token_nll


@register("Att2Seq", role=GENERATION, source="Dong et al., EACL 2017", search_space={
    "lr": LogFloat(1e-4, 1e-2), "dropout": Float(0.0, 0.5), "d_hidden": Categorical((48, 96, 192, 512))})
class Att2Seq(ExplanationGenerator):
    """Att2Seq generator.

    Parameters
    ----------
    d_emb : int
        Attribute and word embedding size (64 in Att2Seq's code).
    d_hidden : int
        LSTM size (512).
    n_layers : int
        LSTM layers (2).
    dropout : float
        Dropout between LSTM layers, on the word inputs and before the output layer.
    training : TrainingSettings
    """

    def __init__(self, n_users: int, n_items: int, spec: TextSpec, *, d_emb: int, d_hidden: int, n_layers: int,
                 dropout: float, training: TrainingSettings) -> None:
        super().__init__(spec, training)
        self.n_layers, self.d_hidden = n_layers, d_hidden
        self.user_emb, self.item_emb, self.rating_emb = nn.Embedding(n_users, d_emb), nn.Embedding(n_items, d_emb), nn.Embedding(2, d_emb)
        self.word_emb = nn.Embedding(spec.vocab_size, d_emb, padding_idx=spec.pad_id)
        self.encoder = nn.Linear(3 * d_emb, n_layers * d_hidden)
        self.lstm = nn.LSTM(d_emb, d_hidden, n_layers, batch_first=True, dropout=dropout)
        self.att_key = nn.Linear(d_emb, d_hidden, bias=False)
        self.combine = nn.Linear(d_hidden + d_emb, d_hidden)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(d_hidden, spec.vocab_size)

    def _attributes(self, batch: ExplanationBatch) -> torch.Tensor:
        return torch.stack([self.user_emb(batch.user), self.item_emb(batch.item), self.rating_emb(batch.sentiment)], 1)  # (B, 3, E)

    def _logits(self, attrs: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        b = attrs.shape[0]
        h0 = torch.tanh(self.encoder(attrs.reshape(b, -1))).view(b, self.n_layers, self.d_hidden).transpose(0, 1).contiguous()
        out, _ = self.lstm(self.drop(self.word_emb(tokens)), (h0, torch.zeros_like(h0)))  # (B, L, H)
        att = torch.softmax(out @ self.att_key(attrs).transpose(1, 2), -1)  # (B, L, 3)
        ctx = att @ attrs  # (B, L, E)
        return self.out(self.drop(torch.tanh(self.combine(torch.cat([out, ctx], -1)))))  # (B, L, V)

    def loss(self, batch: ExplanationBatch) -> dict[str, torch.Tensor]:
        nll_sum, n_tok = token_nll(self._logits(self._attributes(batch), batch.seq[:, :-1]), batch.seq[:, 1:], self.spec.pad_id)
        nll = nll_sum.sum() / n_tok.sum()
        return {"loss": nll, "nll": nll}

    @torch.no_grad()
    def decode(self, batch: ExplanationBatch, max_len: int) -> torch.Tensor:
        attrs = self._attributes(batch)
        return self._greedy(lambda toks: self._logits(attrs, toks)[:, -1], len(batch), max_len, attrs.device)
