"""Building blocks shared by SEMA/SEMAX, DeepCoNN and TransNets: text encoders, attention and an FM."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class WordLSTM(nn.Module):
    """LSTM over the word embeddings of a text (SEMAX Eqs. 1-6 and 12).

    Returns every hidden state ``h_t`` (zeros at padding) and the last real one ``h_L`` (Eq. 12:
    the text embedding ``y`` of SEMA).
    """

    def __init__(self, emb_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(emb_dim, hidden_dim, batch_first=True)

    def forward(self, emb: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # emb: (B, T, E), lengths: (B,) >= 1
        packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h_n, _) = self.lstm(packed)
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=emb.size(1))  # (B, T, H)
        return states, h_n[-1]  # (B, T, H), (B, H)


class SequenceLSTM(nn.Module):
    """LSTM over a chronological sequence of text embeddings (SEMAX Eqs. 13-14); empty sequences give zeros.

    A user's (item's) first review has no earlier review; its dynamic representation is the zero
    vector (the LSTM's initial state), our choice where the paper is silent.
    """

    def __init__(self, input_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.lstm = nn.LSTM(input_dim, hidden_dim, batch_first=True)

    def forward(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # seq: (B, M, D), lengths: (B,) >= 0
        out = seq.new_zeros(seq.size(0), self.hidden_dim)  # (B, H)
        nonempty = torch.nonzero(lengths > 0).squeeze(1)
        if nonempty.numel() == 0:
            return out
        packed = pack_padded_sequence(seq[nonempty], lengths[nonempty].cpu(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        return out.index_put((nonempty,), h_n[-1])  # (B, H)


def gather_sequence(table: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ``table`` at ``index`` (``-1`` = padding -> zeros) and the number of real entries per row."""
    # table: (U, D), index: (B, M)
    mask = index >= 0
    seq = table[index.clamp(min=0)] * mask.unsqueeze(-1).to(table.dtype)  # (B, M, D)
    return seq, mask.sum(1)


class UserItemAttention(nn.Module):
    """Word attention conditioned on the user and the item (SEMAX Eqs. 7-9).

    ``e_t = w_a^T tanh(W_a [h_t, u, v] + b_a)``, ``alpha = softmax(e)`` over the real words,
    ``y = sum_t alpha_t h_t``.
    """

    def __init__(self, hidden_dim: int, factor_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(hidden_dim + 2 * factor_dim, attn_dim)  # W_a, b_a
        self.w = nn.Linear(attn_dim, 1, bias=False)  # w_a

    def forward(self, states: torch.Tensor, mask: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # states: (B, T, H), mask: (B, T) bool, u, v: (B, D1)
        T = states.size(1)
        uv = torch.cat([u, v], dim=-1).unsqueeze(1).expand(-1, T, -1)  # (B, T, 2 D1)
        e = self.w(torch.tanh(self.proj(torch.cat([states, uv], dim=-1)))).squeeze(-1)  # (B, T)  Eq. 7
        alpha = torch.softmax(e.masked_fill(~mask, float("-inf")), dim=1)  # (B, T)  Eq. 8
        y = torch.bmm(alpha.unsqueeze(1), states).squeeze(1)  # (B, H)  Eq. 9
        return y, alpha


class TextCNN(nn.Module):
    """The CNN text processor of DeepCoNN / TransNets: conv, ReLU, max-pool over time, FC, tanh.

    Positions whose window starts on padding are excluded from the max-pool; an all-padding text
    (an empty history) pools to zeros. Not :class:`xrec_core.models.convmf.TextCNN`: that is Kim's
    ConvMF encoder (windows 3/4/5, its own embedding table, a 200-unit hidden layer, no padding
    mask), while DeepCoNN and TransNets use one window, a shared embedding table and a max-pool
    that must skip the padding inside concatenated history documents.
    """

    def __init__(self, emb_dim: int, n_filters: int, window: int, out_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv = nn.Conv1d(emb_dim, n_filters, window, padding=window // 2)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(n_filters, out_dim)

    def forward(self, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # emb: (B, T, E), mask: (B, T) bool (real tokens)
        T = emb.size(1)
        conv = torch.relu(self.conv(emb.transpose(1, 2)))[:, :, :T]  # (B, F, T)
        conv = conv.masked_fill(~mask.unsqueeze(1), float("-inf"))
        pooled = conv.max(dim=2).values  # (B, F)
        pooled = torch.where(torch.isfinite(pooled), pooled, torch.zeros_like(pooled))
        return torch.tanh(self.fc(self.dropout(pooled)))  # (B, out)


class FactorizationMachine(nn.Module):
    """Second-order factorization machine (Rendle 2010), the rating layer of DeepCoNN and TransNets.

    ``y = w0 + <w, x> + 1/2 sum_f [(sum_i V_if x_i)^2 - sum_i V_if^2 x_i^2]``.
    """

    def __init__(self, n_features: int, k: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features, 1)
        self.V = nn.Parameter(torch.randn(n_features, k) * 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, n)
        xv = x @ self.V  # (B, k)
        pair = 0.5 * (xv.pow(2) - x.pow(2) @ self.V.pow(2)).sum(1)  # (B,)
        return self.linear(x).squeeze(1) + pair  # (B,)
