"""PETER (Li, Zhang & Chen, ACL 2021): personalized Transformer for explainable recommendation.

Input ``[u, i, <BOS>, w_1 .. w_n]``; the PETER attention mask lets ``u`` and ``i`` see each
other and every word see ``u``, ``i`` and the previous words. Three tasks share the Transformer:
explanation generation (NLL from the word positions), context prediction (the bag of the
explanation's words predicted from the hidden state at position 1) and rating prediction (MLP
on the hidden state at position 0); weights ``text_reg = context_reg = 1``, ``rating_reg = 0.1``
as in PETER's code. The feature is not an input (plain PETER, not PETER+).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .common import ExplanationBatch, ExplanationGenerator, TextSpec, token_nll


def peter_mask(n: int, device: torch.device) -> torch.Tensor:
    """``(n, n)`` bool mask (True = blocked): causal, except that positions 0 and 1 see each other."""
    mask = torch.triu(torch.ones(n, n, dtype=torch.bool, device=device), diagonal=1)
    mask[0, 1] = False
    return mask


class PETER(ExplanationGenerator):
    """PETER generator.

    Parameters
    ----------
    d_model, n_heads, d_ff, n_layers : int
        Transformer sizes (512, 2, 2048, 2 in PETER's code).
    rating_reg, context_reg : float
        Task weights (0.1 and 1.0).
    max_len : int
        Longest word sequence covered by the positional embeddings.
    """

    def __init__(self, n_users: int, n_items: int, spec: TextSpec, *, d_model: int = 512, n_heads: int = 2,
                 d_ff: int = 2048, n_layers: int = 2, dropout: float = 0.2, rating_reg: float = 0.1,
                 context_reg: float = 1.0, max_len: int = 24) -> None:
        super().__init__()
        self.spec, self.rating_reg, self.context_reg = spec, rating_reg, context_reg
        self.user_emb, self.item_emb = nn.Embedding(n_users, d_model), nn.Embedding(n_items, d_model)
        self.word_emb = nn.Embedding(spec.vocab_size, d_model, padding_idx=spec.pad_id)
        self.pos = nn.Embedding(max_len + 3, d_model)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout, batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.out = nn.Linear(d_model, spec.vocab_size)
        self.rating_mlp = nn.Sequential(nn.Linear(d_model, d_model), nn.Sigmoid(), nn.Linear(d_model, 1))
        for emb in (self.user_emb, self.item_emb, self.word_emb):  # PETER's init_weights
            nn.init.uniform_(emb.weight, -0.1, 0.1)

    def _hidden(self, batch: ExplanationBatch, tokens: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.user_emb(batch.user)[:, None], self.item_emb(batch.item)[:, None], self.word_emb(tokens)], 1)
        n = x.shape[1]
        x = x + self.pos(torch.arange(n, device=x.device))
        pad = torch.cat([torch.zeros(x.shape[0], 2, dtype=torch.bool, device=x.device), tokens == self.spec.pad_id], 1)
        return self.transformer(x, mask=peter_mask(n, x.device), src_key_padding_mask=pad)  # (B, 2+L, d)

    def loss(self, batch: ExplanationBatch) -> dict[str, torch.Tensor]:
        tokens, target = batch.seq[:, :-1], batch.seq[:, 1:]
        h = self._hidden(batch, tokens)
        nll_sum, n_tok = token_nll(self.out(h[:, 2:]), target, self.spec.pad_id)
        nll = nll_sum.sum() / n_tok.sum()
        ctx_logp = F.log_softmax(self.out(h[:, 1]), -1)  # (B, V): context prediction from position 1
        ctx = -(ctx_logp.gather(1, target) * (target != self.spec.pad_id)).sum() / n_tok.sum()
        mse = F.mse_loss(self.rating_mlp(h[:, 0]).squeeze(-1), batch.rating)
        return {"loss": nll + self.context_reg * ctx + self.rating_reg * mse, "nll": nll, "context": ctx, "rating_mse": mse}

    @torch.no_grad()
    def generate(self, batch: ExplanationBatch, max_len: int = 20) -> torch.Tensor:
        return self._greedy(lambda toks: self.out(self._hidden(batch, toks)[:, -1]), len(batch), max_len, batch.user.device)
