"""Text encoders ``g(X_j)`` of "Ask the GRU" (Bansal, Belanger & McCallum, RecSys 2016).

Both encoders map a padded batch of token ids ``(B, T)`` (``pad_id`` marks padding) to a
``K``-dimensional item-content vector ``(B, K)``. Each exposes ``embed`` (token ids -> word
embeddings ``e_{j,t}``) and ``encode_embeddings`` (embeddings -> ``g``) separately, so that the
saliency of Sec. 4.3 can differentiate the rating with respect to the word embeddings.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class _WordEmbedder(nn.Module):
    """Word lookup table (``K_w``-dim) with dropout on its output, optionally pre-trained (CBOW)."""

    def __init__(self, vocab_size: int, k_w: int, dropout: float, pad_id: int,
                 pretrained: np.ndarray | None) -> None:
        super().__init__()
        if vocab_size < 1 or k_w < 1:
            raise ValueError(f"vocab_size and k_w must be positive, got {vocab_size}, {k_w}")
        self.pad_id = pad_id
        self.word = nn.Embedding(vocab_size, k_w, padding_idx=pad_id)
        nn.init.normal_(self.word.weight, std=0.1)
        if pretrained is not None:
            if pretrained.shape != (vocab_size, k_w):
                raise ValueError(f"pretrained embeddings have shape {pretrained.shape}, expected {(vocab_size, k_w)}")
            with torch.no_grad():
                self.word.weight.copy_(torch.as_tensor(pretrained, dtype=torch.float32))
        with torch.no_grad():
            self.word.weight[pad_id].zero_()
        self.drop = nn.Dropout(dropout)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.word(tokens)  # (B, T, K_w)

    def mask(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens != self.pad_id  # (B, T)


class EmbedEncoder(_WordEmbedder):
    """Order-insensitive encoder: the mean of the item's word embeddings, eq. (5).

    Parameters
    ----------
    vocab_size : int
        Number of word ids (including the special tokens).
    k_w : int, default 200
        Word-embedding size ``K_w`` (= ``K``, Sec. 4.1.2), also the output size.
    dropout : float, default 0.1
        Dropout on the word embeddings (the paper's embedding-layer rate).
    pad_id : int, default 0
    pretrained : ndarray, optional
        ``(vocab_size, k_w)`` initial word vectors (CBOW, :func:`pretrain_cbow`).
    """

    def __init__(self, vocab_size: int, k_w: int = 200, dropout: float = 0.1, pad_id: int = 0,
                 pretrained: np.ndarray | None = None) -> None:
        super().__init__(vocab_size, k_w, dropout, pad_id, pretrained)
        self.out_dim = k_w

    def encode_embeddings(self, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        emb = self.drop(emb)  # (B, T, K_w)
        m = mask.unsqueeze(-1).to(emb.dtype)  # (B, T, 1)
        return (emb * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B, K_w)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.encode_embeddings(self.embed(tokens), self.mask(tokens))


class GRUEncoder(_WordEmbedder):
    """Order-sensitive encoder of Sec. 3.2 / Figure 1.

    Word embeddings -> bidirectional GRU (``k_h1`` hidden units per direction, the two directions
    concatenated) -> GRU (``k_h2``) -> mean pooling over the real (non-padding) time steps.
    ``torch.nn.GRU`` implements eqs. (6)-(8) (reset gate ``f_t``, update gate ``o_t``); padded
    sequences are packed so the backward direction starts at each text's last real word.

    Parameters
    ----------
    vocab_size : int
    k_w : int, default 200
        Word-embedding size.
    k_h1 : int, default 400
        Hidden size of the first (bidirectional) layer. The paper says "hidden state dimension
        K_h1 = 400" for a bidirectional layer without saying whether that is per direction; we read
        it as per direction (the concatenation fed to layer 2 then has 800 dimensions).
    k_h2 : int, default 200
        Hidden size of the second layer = the output size ``K``.
    dropout : tuple of float, default (0.1, 0.5, 0.3)
        Dropout on the embeddings, on the first layer's output and on the second layer's output
        (Sec. 4.1.2).
    pad_id : int, default 0
    pretrained : ndarray, optional
        CBOW word vectors.
    """

    def __init__(self, vocab_size: int, k_w: int = 200, k_h1: int = 400, k_h2: int = 200,
                 dropout: tuple[float, float, float] = (0.1, 0.5, 0.3), pad_id: int = 0,
                 pretrained: np.ndarray | None = None) -> None:
        super().__init__(vocab_size, k_w, dropout[0], pad_id, pretrained)
        self.gru1 = nn.GRU(k_w, k_h1, batch_first=True, bidirectional=True)
        self.drop1 = nn.Dropout(dropout[1])
        self.gru2 = nn.GRU(2 * k_h1, k_h2, batch_first=True)
        self.drop2 = nn.Dropout(dropout[2])
        self.out_dim = k_h2

    def encode_embeddings(self, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(1).clamp(min=1).cpu()  # (B,)
        x = self.drop(emb)  # (B, T, K_w)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        h1, _ = self.gru1(packed)
        h1, _ = pad_packed_sequence(h1, batch_first=True, total_length=emb.shape[1])  # (B, T, 2 K_h1)
        h1 = self.drop1(h1)
        packed = pack_padded_sequence(h1, lengths, batch_first=True, enforce_sorted=False)
        h2, _ = self.gru2(packed)
        h2, _ = pad_packed_sequence(h2, batch_first=True, total_length=emb.shape[1])  # (B, T, K_h2)
        h2 = self.drop2(h2)
        m = mask.unsqueeze(-1).to(h2.dtype)  # (B, T, 1)
        return (h2 * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B, K_h2) mean pooling

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.encode_embeddings(self.embed(tokens), self.mask(tokens))
