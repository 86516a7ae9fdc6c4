"""Convolutional review discriminator of the MT model (Lu, Dong & Smyth, RecSys 2018, Sec. 3.1.2, Fig. 2).

A Kim-style text CNN whose input at every position is the word vector concatenated with a
learned user-specific (item-specific, or user and item for MT-P) vector, followed by a
convolutional layer, max-pooling over time, a fully connected projection and a sigmoid. It is
trained with Eq. 2 (real reviews of the entity -> 1, generated ones -> 0).

Choice (the paper gives no sizes): window widths 3, 4, 5 with ``n_filters`` maps each, as in
Kim (2014) which the paper cites for the architecture.
"""

from __future__ import annotations

import torch
from torch import nn


class ReviewDiscriminator(nn.Module):
    """D_phi(Y | entity): probability that review Y is an authentic review of the entity.

    Parameters
    ----------
    vocab_size, emb_dim : int
        Vocabulary and word-vector size.
    entity_sizes : tuple of int
        Number of users and/or items whose vectors are concatenated to each word, e.g.
        ``(n_users,)`` for the user discriminator, ``(n_users, n_items)`` for MT-P.
    entity_dim : int
        Size of each entity vector.
    n_filters : int
        Feature maps per window width.
    windows : tuple of int
        Convolution widths.
    """

    def __init__(self, vocab_size: int, emb_dim: int, entity_sizes: tuple[int, ...], entity_dim: int = 16,
                 n_filters: int = 32, windows: tuple[int, ...] = (3, 4, 5), pad_id: int = 0, dropout: float = 0.2) -> None:
        super().__init__()
        self.windows = windows
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_id)
        self.entities = nn.ModuleList(nn.Embedding(n, entity_dim) for n in entity_sizes)
        in_dim = emb_dim + entity_dim * len(entity_sizes)
        self.convs = nn.ModuleList(nn.Conv1d(in_dim, n_filters, w) for w in windows)
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(n_filters * len(windows), 1)

    def forward(self, tokens: torch.Tensor, entity_ids: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """tokens (B, T), one (B,) id tensor per entity table -> logits (B,) (sigmoid gives D)."""
        if len(entity_ids) != len(self.entities):
            raise ValueError(f"expected {len(self.entities)} entity id tensors, got {len(entity_ids)}")
        if tokens.shape[1] < max(self.windows):
            pad = tokens.new_zeros(tokens.shape[0], max(self.windows) - tokens.shape[1])
            tokens = torch.cat([tokens, pad], dim=1)
        x = self.embed(tokens)                                                    # (B, T, k)
        ent = torch.cat([emb(ids) for emb, ids in zip(self.entities, entity_ids)], dim=-1)  # (B, E)
        x = torch.cat([x, ent[:, None, :].expand(-1, x.shape[1], -1)], dim=-1)    # (B, T, k + E)
        x = x.transpose(1, 2)                                                     # (B, k + E, T)
        pooled = [torch.relu(conv(x)).amax(dim=-1) for conv in self.convs]        # each (B, F)
        return self.proj(self.drop(torch.cat(pooled, dim=-1)))[:, 0]              # (B,)
