"""NETE (Li, Zhang & Chen, CIKM 2020): neural template explanation generation with a GFRU.

Rating prediction from the user and item embeddings (MLP, MSE) and a gated fusion recurrent
unit (GFRU) that fuses two GRUs: a *context* GRU initialised from ``tanh(W [E_u; E_i])`` and a
*feature/sentiment* GRU initialised from ``tanh(W [E_f; E_s])``; a gate
``g_t = sigmoid(W_g [h^c_t; h^f_t])`` mixes them, ``h_t = g_t h^c_t + (1 - g_t) h^f_t``.
As in NETE's code, the explanation's feature word is an input at training *and* test time
(the ground-truth feature), which gives NETE information the other models lack.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ...search_space import Categorical, Float, LogFloat
from ..registry import GENERATION, register
from .common import ExplanationBatch, ExplanationGenerator, TextSpec, TrainingSettings, token_nll


@register("NETE", role=GENERATION, source="Li, Zhang & Chen, CIKM 2020", search_space={
    "lr": LogFloat(1e-4, 1e-2), "dropout": Float(0.0, 0.5), "d_hidden": Categorical((48, 96, 192, 256)),
    "rating_reg": LogFloat(1e-2, 1.0)})
class NETE(ExplanationGenerator):
    """NETE generator (GFRU decoder conditioned on user, item, sentiment and feature).

    Parameters
    ----------
    d_emb : int
        Embedding size (200 in NETE's code).
    d_hidden : int
        GRU size (256).
    rating_reg : float
        Weight of the rating MSE.
    dropout : float
        Dropout on the word inputs and the fused GRU outputs.
    training : TrainingSettings
    """

    def __init__(self, n_users: int, n_items: int, spec: TextSpec, *, d_emb: int, d_hidden: int, rating_reg: float,
                 dropout: float, training: TrainingSettings) -> None:
        super().__init__(spec, training)
        self.rating_reg = rating_reg
        self.user_emb, self.item_emb = nn.Embedding(n_users, d_emb), nn.Embedding(n_items, d_emb)
        self.sent_emb = nn.Embedding(2, d_emb)
        self.word_emb = nn.Embedding(spec.vocab_size, d_emb, padding_idx=spec.pad_id)
        self.rating_mlp = nn.Sequential(nn.Linear(2 * d_emb, d_hidden), nn.Sigmoid(), nn.Linear(d_hidden, 1))
        self.init_ctx = nn.Linear(2 * d_emb, d_hidden)
        self.init_feat = nn.Linear(2 * d_emb, d_hidden)
        self.gru_ctx = nn.GRU(d_emb, d_hidden, batch_first=True)
        self.gru_feat = nn.GRU(d_emb, d_hidden, batch_first=True)
        self.gate = nn.Linear(2 * d_hidden, d_hidden)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(d_hidden, spec.vocab_size)

    def _logits(self, batch: ExplanationBatch, tokens: torch.Tensor) -> torch.Tensor:
        ui = torch.cat([self.user_emb(batch.user), self.item_emb(batch.item)], -1)
        fs = torch.cat([self.word_emb(batch.feature), self.sent_emb(batch.sentiment)], -1)
        x = self.drop(self.word_emb(tokens))
        hc, _ = self.gru_ctx(x, torch.tanh(self.init_ctx(ui))[None])    # (B, L, H)
        hf, _ = self.gru_feat(x, torch.tanh(self.init_feat(fs))[None])  # (B, L, H)
        g = torch.sigmoid(self.gate(torch.cat([hc, hf], -1)))
        return self.out(self.drop(g * hc + (1 - g) * hf))  # (B, L, V)

    def loss(self, batch: ExplanationBatch) -> dict[str, torch.Tensor]:
        nll_sum, n_tok = token_nll(self._logits(batch, batch.seq[:, :-1]), batch.seq[:, 1:], self.spec.pad_id)
        nll = nll_sum.sum() / n_tok.sum()
        ui = torch.cat([self.user_emb(batch.user), self.item_emb(batch.item)], -1)
        mse = F.mse_loss(self.rating_mlp(ui).squeeze(-1), batch.rating)
        return {"loss": nll + self.rating_reg * mse, "nll": nll, "rating_mse": mse}

    @torch.no_grad()
    def decode(self, batch: ExplanationBatch, max_len: int) -> torch.Tensor:
        return self._greedy(lambda toks: self._logits(batch, toks)[:, -1], len(batch), max_len, batch.user.device)
