"""The "naive VAE" of Sec. 4.5 / Fig. 4, used to show the noise left in sparsely trained embeddings.

A conditional sentence VAE: the recognition side encodes the explanation (mean of word
embeddings, concatenated with the user and item embeddings) into ``q(z|x, u, i)``; a GRU decoder
generates the explanation from ``[E_u, E_i, z]``; loss = NLL + ``KL(q || N(0, I))``. The paper
does not describe this model further; this is the smallest VAE that conditions on user and
item embeddings, which is all Fig. 4 needs.
"""

from __future__ import annotations

import torch
from torch import nn

from ..explain.common import ExplanationBatch, ExplanationGenerator, TextSpec, TrainingSettings, token_nll
from .blocks import gaussian_kl


class PlainVAE(ExplanationGenerator):
    """Conditional sentence VAE over (user, item) embeddings (Fig. 4).

    Parameters
    ----------
    d_emb : int
        Size of the word, user and item embeddings.
    d_hidden : int
        GRU decoder size.
    d_latent : int
        Size of ``z``.
    dropout : float
    training : TrainingSettings
    """

    def __init__(self, n_users: int, n_items: int, spec: TextSpec, *, d_emb: int, d_hidden: int, d_latent: int,
                 dropout: float, training: TrainingSettings) -> None:
        super().__init__(spec, training)
        self.word_emb = nn.Embedding(spec.vocab_size, d_emb, padding_idx=spec.pad_id)
        self.user_emb, self.item_emb = nn.Embedding(n_users, d_emb), nn.Embedding(n_items, d_emb)
        self.posterior = nn.Linear(3 * d_emb, 2 * d_latent)
        self.init = nn.Linear(2 * d_emb + d_latent, d_hidden)
        self.gru = nn.GRU(d_emb, d_hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(d_hidden, spec.vocab_size)

    def _encode(self, batch: ExplanationBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        words = batch.seq[:, 1:]
        mask = (words != self.spec.pad_id).float()[..., None]
        bag = (self.word_emb(words) * mask).sum(1) / mask.sum(1).clamp(min=1)  # (B, d)
        ui = torch.cat([self.user_emb(batch.user), self.item_emb(batch.item)], -1)  # (B, 2d)
        mu, logvar = self.posterior(torch.cat([bag, ui], -1)).chunk(2, -1)
        return ui, mu, logvar

    def _logits(self, ui: torch.Tensor, z: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        h0 = torch.tanh(self.init(torch.cat([ui, z], -1)))[None]  # (1, B, H)
        out, _ = self.gru(self.drop(self.word_emb(tokens)), h0)
        return self.out(self.drop(out))  # (B, L, V)

    def loss(self, batch: ExplanationBatch) -> dict[str, torch.Tensor]:
        ui, mu, logvar = self._encode(batch)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        nll_sum, n_tok = token_nll(self._logits(ui, z, batch.seq[:, :-1]), batch.seq[:, 1:], self.spec.pad_id)
        kl = gaussian_kl(mu, logvar)
        return {"loss": (nll_sum + kl).mean(), "nll": nll_sum.sum() / n_tok.sum(), "kl": kl.mean()}

    @torch.no_grad()
    def decode(self, batch: ExplanationBatch, max_len: int) -> torch.Tensor:
        ui = torch.cat([self.user_emb(batch.user), self.item_emb(batch.item)], -1)
        z = torch.zeros(len(batch), self.posterior.out_features // 2, device=ui.device)
        return self._greedy(lambda toks: self._logits(ui, z, toks)[:, -1], len(batch), max_len, ui.device)
