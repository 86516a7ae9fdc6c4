"""PETER (Li, Zhang & Chen, ACL 2021): personalized Transformer for explainable recommendation.

Input ``[u, i, <BOS>, w_1 .. w_n]``; the PETER attention mask lets ``u`` and ``i`` see each
other and every word see ``u``, ``i`` and the previous words. Three tasks share the Transformer:
explanation generation (NLL from the word positions), context prediction (the bag of the
explanation's words predicted from the hidden state at position 1) and rating prediction (MLP
on the hidden state at position 0); weights ``text_reg = 1``, ``context_reg`` and ``rating_reg``
as in PETER's code. The feature is not an input (plain PETER, not PETER+).

Input handling follows the authors' ``module.py``: user, item and word vectors start at
uniform(-0.1, 0.1) and are scaled by ``sqrt(d)``, fixed sinusoidal positions are added, dropout
is applied to the sum; the output layer starts at uniform(-0.1, 0.1) with a zero bias, and so do
the rating MLP's layers. An earlier version of this module used learned positions left at their
N(0, 1) start (about 17x the size of the unscaled token vectors at d = 96), no scaling, no input
dropout and PyTorch's default output initialisation: at the start of training the model then sees
mostly positions, and it settled on one sentence for every user.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ...search_space import Categorical, Float, LogFloat
from ..registry import GENERATION, register
from .common import (ExplanationBatch, ExplanationGenerator, SinusoidalPositions, TextSpec, TrainingSettings,
                     projected_token_nll)

#: PETER's ``initrange``: uniform(-0.1, 0.1) start of the embeddings, the output layer and the rating MLP
INIT_RANGE = 0.1


def peter_mask(n: int, device: torch.device) -> torch.Tensor:
    """``(n, n)`` bool mask (True = blocked): causal, except that positions 0 and 1 see each other."""
    mask = torch.triu(torch.ones(n, n, dtype=torch.bool, device=device), diagonal=1)
    mask[0, 1] = False
    return mask


@register("PETER", role=GENERATION, source="Li, Zhang & Chen, ACL 2021", search_space={
    "lr": LogFloat(1e-4, 1e-2), "dropout": Float(0.0, 0.5), "d_model": Categorical((48, 96, 192, 512)),
    "rating_reg": LogFloat(1e-2, 1.0), "context_reg": LogFloat(0.1, 10.0)})
class PETER(ExplanationGenerator):
    """PETER generator.

    Parameters
    ----------
    d_model, n_heads, d_ff, n_layers : int
        Transformer sizes (512, 2, 2048, 2 in PETER's code).
    dropout : float
        Dropout of the input sum and inside the Transformer layers (0.2).
    rating_reg, context_reg : float
        Task weights (0.1 and 1.0).
    max_len : int
        Longest word sequence covered by the positions.
    training : TrainingSettings
    """

    def __init__(self, n_users: int, n_items: int, spec: TextSpec, *, d_model: int, n_heads: int, d_ff: int, n_layers: int,
                 dropout: float, rating_reg: float, context_reg: float, max_len: int, training: TrainingSettings) -> None:
        super().__init__(spec, training)
        self.rating_reg, self.context_reg, self.scale = rating_reg, context_reg, math.sqrt(d_model)
        self.user_emb, self.item_emb = nn.Embedding(n_users, d_model), nn.Embedding(n_items, d_model)
        self.word_emb = nn.Embedding(spec.vocab_size, d_model)
        self.pos = SinusoidalPositions(d_model, max_len + 3)
        self.input_dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout, batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.out = nn.Linear(d_model, spec.vocab_size)
        self.rating_mlp = nn.Sequential(nn.Linear(d_model, d_model), nn.Sigmoid(), nn.Linear(d_model, 1))
        for weight in (self.user_emb.weight, self.item_emb.weight, self.word_emb.weight, self.out.weight,
                       self.rating_mlp[0].weight, self.rating_mlp[2].weight):
            nn.init.uniform_(weight, -INIT_RANGE, INIT_RANGE)
        for bias in (self.out.bias, self.rating_mlp[0].bias, self.rating_mlp[2].bias):
            nn.init.zeros_(bias)

    def _hidden(self, batch: ExplanationBatch, tokens: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.user_emb(batch.user)[:, None], self.item_emb(batch.item)[:, None], self.word_emb(tokens)], 1)  # (B, 2+L, d)
        n = x.shape[1]
        x = self.input_dropout(x * self.scale + self.pos(n))
        pad = torch.cat([torch.zeros(x.shape[0], 2, dtype=torch.bool, device=x.device), tokens == self.spec.pad_id], 1)
        return self.transformer(x, mask=peter_mask(n, x.device), src_key_padding_mask=pad)  # (B, 2+L, d)

    def loss(self, batch: ExplanationBatch) -> dict[str, torch.Tensor]:
        tokens, target = batch.seq[:, :-1], batch.seq[:, 1:]
        h = self._hidden(batch, tokens)
        nll_sum, n_tok = projected_token_nll(h[:, 2:], target, self.out.weight, self.out.bias, self.spec.pad_id)
        nll = nll_sum.sum() / n_tok.sum()
        ctx_logp = F.log_softmax(self.out(h[:, 1]), -1)  # (B, V): context prediction from position 1
        ctx = -(ctx_logp.gather(1, target) * (target != self.spec.pad_id)).sum() / n_tok.sum()
        mse = F.mse_loss(self.rating_mlp(h[:, 0]).squeeze(-1), batch.rating)
        return {"loss": nll + self.context_reg * ctx + self.rating_reg * mse, "nll": nll, "context": ctx, "rating_mse": mse}

    @torch.no_grad()
    def decode(self, batch: ExplanationBatch, max_len: int) -> torch.Tensor:
        return self._greedy(lambda toks: self.out(self._hidden(batch, toks)[:, -1]), len(batch), max_len, batch.user.device)
