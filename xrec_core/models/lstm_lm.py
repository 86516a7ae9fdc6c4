"""Word-level LSTM language model (the "LSTM" baseline of the MT paper, Table 3).

Docs
----
The MT paper's baseline (iii) is "the recurrent language model that employs the Long Short Term
Memory (LSTM) [17] as the recurrent cell" (Hochreiter & Schmidhuber 1997). Ours reads
``<BOS> w_1 .. w_n`` through a word embedding and an LSTM and predicts ``w_1 .. w_n <EOS>``
with a softmax over the shared vocabulary; it is unconditional -- every user and item gets a
sample from the same model. The paper gives no sizes; the defaults (128-d embeddings, one
256-unit layer, dropout 0.2, Adam 1e-3, early stopping on 10% of the training reviews) are ours,
and the output bias starts at the log unigram frequencies (a standard initialisation that makes
a briefly trained model no worse than a unigram model).
The same network with user/item vectors concatenated to every input is the GCN baseline
(:mod:`xrec_core.models.gcn`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..search_space import Float, Int, LogFloat
from .lm_base import NeuralTokenLM, Tokens
from .registry import GENERATION, register


class ConcatLSTMNet(nn.Module):
    """Embedding -> (concat condition vectors at every step) -> LSTM -> linear output.

    Parameters
    ----------
    vocab_size, pad_id : vocabulary size and padding id.
    emb_dim, hidden_dim, n_layers, dropout : network sizes.
    n_users, n_items : number of learned user / item vectors (0 = not conditioned on them).
    cond_dim : size of each user / item vector.
    """

    def __init__(self, vocab_size: int, pad_id: int, emb_dim: int, hidden_dim: int, n_layers: int, dropout: float,
                 n_users: int = 0, n_items: int = 0, cond_dim: int = 0) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_id)
        self.user_embed = nn.Embedding(n_users, cond_dim) if n_users else None
        self.item_embed = nn.Embedding(n_items, cond_dim) if n_items else None
        in_dim = emb_dim + cond_dim * ((n_users > 0) + (n_items > 0))
        self.lstm = nn.LSTM(in_dim, hidden_dim, num_layers=n_layers, batch_first=True,
                            dropout=dropout if n_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_dim, vocab_size)

    def features(self, inp: torch.Tensor, users: torch.Tensor | None, items: torch.Tensor | None) -> torch.Tensor:
        x = self.drop(self.embed(inp))  # (B, T, E)
        parts = [x]
        for table, ids in ((self.user_embed, users), (self.item_embed, items)):
            if table is not None:
                parts.append(table(ids)[:, None, :].expand(-1, inp.shape[1], -1))  # (B, T, C)
        h, _ = self.lstm(torch.cat(parts, -1))  # (B, T, H)
        return self.drop(h)

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        return self.out(feats)  # (B, T, V)


@register("LSTM", role=GENERATION, search_space={"hidden_dim": Int(32, 512, log=True), "lr": LogFloat(1e-4, 1e-2), "dropout": Float(0.0, 0.5)},
          source="Hochreiter & Schmidhuber 1997 (MT paper baseline iii)")
class LSTMLM(NeuralTokenLM):
    """Unconditional word-level LSTM language model (MT paper baseline (iii)).

    Parameters
    ----------
    vocab : xrec_core.data.text.Vocabulary
        Shared vocabulary.
    emb_dim, hidden_dim, n_layers, dropout : network sizes (our defaults; the paper gives none).
    **train : training options of :class:`~xrec_core.models.lm_base.NeuralTokenLM`
        (``epochs``, ``batch_size``, ``lr``, ``valid_frac``, ``patience``, ``device``, ``seed``).
    """

    def __init__(self, vocab, emb_dim: int = 128, hidden_dim: int = 256, n_layers: int = 1, dropout: float = 0.2,
                 **train) -> None:
        super().__init__(vocab, **train)
        self.emb_dim, self.hidden_dim, self.n_layers, self.dropout = emb_dim, hidden_dim, n_layers, dropout
        self.cond_dim = 0  # GCN sets the size of its user / item vectors

    def _build_net(self, n_users: int, n_items: int, train_token_lists: Sequence[Tokens]) -> nn.Module:
        net = ConcatLSTMNet(self.vocab_size, self.pad_id, self.emb_dim, self.hidden_dim, self.n_layers, self.dropout,
                            n_users=n_users, n_items=n_items, cond_dim=self.cond_dim)
        with torch.no_grad():  # start from the unigram distribution rather than from uniform
            net.out.bias.copy_(torch.from_numpy(self.log_unigram(train_token_lists)).float())
        return net
