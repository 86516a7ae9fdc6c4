"""Text encoders ``g(X_j)`` of "Ask the GRU" (Bansal, Belanger & McCallum, RecSys 2016).

Both encoders map a padded batch of token ids ``(B, T)`` (``pad_id`` marks padding) to a
``K``-dimensional item-content vector ``(B, K)``. Each exposes ``embed`` (token ids -> word
embeddings ``e_{j,t}``) and ``encode_embeddings`` (embeddings -> ``g``) separately, so that the
saliency of Sec. 4.3 can differentiate the rating with respect to the word embeddings.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn


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
                self.word.weight.copy_(torch.tensor(pretrained, dtype=torch.float32))  # a copy: the array may be read-only
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


def _reverse_index(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """``(n, width)`` time indices that reverse each row's first ``lengths[r]`` steps and keep its padding in place.

    The map is its own inverse: gathering with it twice restores the original order.
    """
    t = torch.arange(width, device=lengths.device).unsqueeze(0)  # (1, W)
    n = lengths.unsqueeze(1)  # (n, 1)
    return torch.where(t < n, n - 1 - t, t)  # (n, W)


def _time_gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[r, index[r, t]]`` for ``x`` (n, W, D) and ``index`` (n, W)."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def _run_direction(x: torch.Tensor, weights: list[torch.Tensor]) -> torch.Tensor:
    """One GRU direction (``[w_ih, w_hh, b_ih, b_hh]`` of an ``nn.GRU``) over ``x`` (n, W, D) from a zero state -> (n, W, H)."""
    h0 = x.new_zeros(1, x.shape[0], weights[1].shape[1])  # (1, n, H)
    with warnings.catch_warnings():
        # cuDNN copies one direction's weights into its own buffer at each call (cheap on a GPU) and says so
        warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")
        out, _ = torch.gru(x, h0, weights, True, 1, 0.0, False, False, True)  # same kernel nn.GRU calls
    return out


class GRUEncoder(_WordEmbedder):
    """Order-sensitive encoder of Sec. 3.2 / Figure 1.

    Word embeddings -> bidirectional GRU (``k_h1`` hidden units per direction, the two directions
    concatenated) -> GRU (``k_h2``) -> mean pooling over the real (non-padding) time steps.
    ``torch.nn.GRU`` implements eqs. (6)-(8) (reset gate ``f_t``, update gate ``o_t``); the backward
    direction starts at each text's last real word.

    How a batch runs (issue 15): texts are sorted by length and cut into a few length buckets, each
    padded only to its own longest text. No ``PackedSequence`` (its backward zero-fills the
    gradient of the whole packed input once per time step): the forward direction and the second
    layer run over the padded bucket (outputs at real steps never depend on the padding after
    them), and the backward direction runs forward over each text reversed within its own length,
    so it too starts at the last real word. The result equals the packed computation.

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
    bucket_size : int, default 128
        Texts per length bucket (the last bucket may be smaller).
    """

    def __init__(self, vocab_size: int, k_w: int = 200, k_h1: int = 400, k_h2: int = 200,
                 dropout: tuple[float, float, float] = (0.1, 0.5, 0.3), pad_id: int = 0,
                 pretrained: np.ndarray | None = None, bucket_size: int = 128) -> None:
        super().__init__(vocab_size, k_w, dropout[0], pad_id, pretrained)
        self.gru1 = nn.GRU(k_w, k_h1, batch_first=True, bidirectional=True)
        self.drop1 = nn.Dropout(dropout[1])
        self.gru2 = nn.GRU(2 * k_h1, k_h2, batch_first=True)
        self.drop2 = nn.Dropout(dropout[2])
        self.out_dim = k_h2
        self.bucket_size = int(bucket_size)

    def _encode_bucket(self, x: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean-pooled second-layer states (n, K_h2) of one bucket: ``x`` (n, W, K_w) with W = max(lengths)."""
        g1, g2 = self.gru1, self.gru2
        fwd = _run_direction(x, [g1.weight_ih_l0, g1.weight_hh_l0, g1.bias_ih_l0, g1.bias_hh_l0])  # (n, W, K_h1)
        rev = _reverse_index(lengths, x.shape[1])  # (n, W)
        bwd = _run_direction(_time_gather(x, rev), [g1.weight_ih_l0_reverse, g1.weight_hh_l0_reverse,
                                                     g1.bias_ih_l0_reverse, g1.bias_hh_l0_reverse])
        h1 = self.drop1(torch.cat([fwd, _time_gather(bwd, rev)], dim=-1))  # (n, W, 2 K_h1)
        h2 = self.drop2(_run_direction(h1, [g2.weight_ih_l0, g2.weight_hh_l0, g2.bias_ih_l0, g2.bias_hh_l0]))  # (n, W, K_h2)
        real = torch.arange(x.shape[1], device=x.device).unsqueeze(0) < lengths.unsqueeze(1)  # (n, W)
        m = (real & mask[:, :x.shape[1]]).unsqueeze(-1).to(h2.dtype)  # (n, W, 1)
        return (h2 * m).sum(1) / mask.sum(1, keepdim=True).clamp(min=1).to(h2.dtype)  # (n, K_h2)

    def encode_embeddings(self, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``g`` (B, K_h2) from word embeddings ``emb`` (B, T, K_w) and the token mask (B, T).

        A text's real words are its first ``mask.sum()`` positions (padding at the end); the mean
        pools the second layer's states over the masked positions among them.
        """
        lengths = mask.sum(1).clamp(min=1)  # (B,)
        x = self.drop(emb)  # (B, T, K_w)
        order = torch.argsort(lengths, stable=True)  # (B,) shortest first
        pooled = []
        for s in range(0, len(order), self.bucket_size):
            idx = order[s:s + self.bucket_size]  # (n,)
            width = int(lengths[idx[-1]])
            pooled.append(self._encode_bucket(x[idx, :width], lengths[idx], mask[idx]))
        out = torch.cat(pooled) if pooled else x.new_zeros(0, self.out_dim)  # (B, K_h2) in `order`
        return out[torch.argsort(order)]  # (B, K_h2) in input order

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.encode_embeddings(self.embed(tokens), self.mask(tokens))
