"""The scoring network shared by the GRU and Embed models (eqs. 1-4 and the tag head of Sec. 3.3)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .encoders import EmbedEncoder, GRUEncoder


class TextRecNet(nn.Module):
    """``r_ij = b_i + b_j + u_i^T f(X_j)`` with ``f(X_j) = g(X_j) + v_j`` (eqs. 3-4) and ``p_jl = sigma(f(X_j)^T t_l)``.

    The item-specific embedding ``v_j`` and item bias ``b_j`` exist only for items seen in
    training (``known`` mask); for cold-start items both are identically zero (Sec. 3, "for
    cold-start prediction ... we set v_j = 0"), enforced by masking, so no update can change them.

    Parameters
    ----------
    encoder : EmbedEncoder or GRUEncoder
        ``g``; its ``out_dim`` is ``K``.
    n_users, n_items : int
    known : bool array (n_items,)
        Items with training likes (own ``v_j`` and ``b_j``).
    n_tags : int, default 0
        Tags for the multi-task head (0: no tag head).
    """

    def __init__(self, encoder: EmbedEncoder | GRUEncoder, n_users: int, n_items: int, known: np.ndarray,
                 n_tags: int = 0) -> None:
        super().__init__()
        k = encoder.out_dim
        self.encoder = encoder
        self.user = nn.Embedding(n_users, k)
        nn.init.normal_(self.user.weight, std=0.01)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item = nn.Embedding(n_items, k)  # v_j
        self.item_bias = nn.Embedding(n_items, 1)
        for p in (self.user_bias.weight, self.item.weight, self.item_bias.weight):
            nn.init.zeros_(p)
        known = np.asarray(known, dtype=bool)
        if known.shape != (n_items,):
            raise ValueError(f"known must have shape ({n_items},), got {known.shape}")
        self.register_buffer("known", torch.tensor(known, dtype=torch.float32))  # a copy: ``known`` may be read-only (Ray)
        self.tag = nn.Embedding(n_tags, k) if n_tags > 0 else None
        if self.tag is not None:
            nn.init.normal_(self.tag.weight, std=0.01)

    def item_specific(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``v_j`` ``(B, K)`` and ``b_j`` ``(B,)``, zero for cold-start items."""
        m = self.known[items]  # (B,)
        return self.item(items) * m.unsqueeze(-1), self.item_bias(items).squeeze(-1) * m

    def item_repr(self, items: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``f(X_j)`` ``(B, K)`` and ``b_j`` ``(B,)`` for item ids with their token ids ``(B, T)``.

        Each distinct item is encoded once (a batch's positives and negatives repeat items; in
        training the copies share one dropout draw), its ``g(X_j)`` shared by its rows.
        """
        v, b = self.item_specific(items)
        uniq, inv = torch.unique(items, return_inverse=True)  # (U,), (B,)
        if len(uniq) == len(items):
            return self.encoder(tokens) + v, b
        first = torch.full((len(uniq),), len(items), dtype=torch.long, device=items.device)
        first = first.scatter_reduce(0, inv, torch.arange(len(items), device=items.device), reduce="amin")  # (U,)
        return self.encoder(tokens[first])[inv] + v, b  # (B, K)

    def rating(self, users: torch.Tensor, f: torch.Tensor, b_item: torch.Tensor) -> torch.Tensor:
        """``r_ij`` ``(B,)`` from user ids and the items' representations ``f`` ``(B, K)``."""
        return self.user_bias(users).squeeze(-1) + b_item + (self.user(users) * f).sum(-1)

    def rating_from_embeddings(self, user: torch.Tensor, item: torch.Tensor, emb: torch.Tensor,
                               mask: torch.Tensor) -> torch.Tensor:
        """``r_ij`` as a function of the item's word embeddings ``emb`` ``(B, T, K_w)`` (for saliency)."""
        v, b = self.item_specific(item)
        f = self.encoder.encode_embeddings(emb, mask) + v
        return self.rating(user, f, b)

    def tag_logits(self, f: torch.Tensor) -> torch.Tensor:
        """``f(X_j)^T t_l`` ``(B, N_t)``."""
        if self.tag is None:
            raise RuntimeError("this model has no tag head (n_tags=0)")
        return f @ self.tag.weight.T


def build_encoder(kind: str, vocab_size: int, *, k: int = 200, k_h1: int = 400,
                  dropout: tuple[float, float, float] = (0.1, 0.5, 0.3), pad_id: int = 0,
                  pretrained: np.ndarray | None = None) -> EmbedEncoder | GRUEncoder:
    """``kind`` ``"gru"`` (Sec. 3.2) or ``"embed"`` (Sec. 3.1), both with output size ``k``."""
    if kind == "gru":
        return GRUEncoder(vocab_size, k_w=k, k_h1=k_h1, k_h2=k, dropout=dropout, pad_id=pad_id, pretrained=pretrained)
    if kind == "embed":
        return EmbedEncoder(vocab_size, k_w=k, dropout=dropout[0], pad_id=pad_id, pretrained=pretrained)
    raise ValueError(f"Unknown encoder {kind!r}; valid: 'gru', 'embed'")
