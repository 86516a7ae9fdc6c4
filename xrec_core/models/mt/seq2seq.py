"""Recurrent review generator of the MT model (Lu, Dong & Smyth, RecSys 2018, Sec. 3.1-3.2).

* :func:`word2vec_matrix` pre-trains the word vectors the embeddings are initialized with
  (gensim's word2vec, "initialized with pre-trained word vectors obtained from word2vec").
* :class:`DocumentEncoder` maps every review of a user (item) document through a bi-GRU,
  concatenates the forward and backward last states (h_T = [fwd_T, bwd_T]) and averages them over
  the document: the textual feature U~_i (V~_j) of dimension D (each direction has D/2 units).
* :class:`EntityEncoder` is the MT-encoder ablation of Table 2: the document encoder replaced by
  an embedding lookup.
* :class:`ReviewDecoder` is the GRU decoder of Eq. 1; the condition (U~_i for MT-U, V~_j for MT-I,
  [U~_i, V~_j] for MT-P) is concatenated with the word vector at every step, h_0 = 0, and the
  first input is the start token.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


def word2vec_matrix(token_lists: list[list[str]], itos: list[str], dim: int, *, seed: int = 0, epochs: int = 5,
                    window: int = 5) -> np.ndarray:
    """Skip-gram word2vec vectors (gensim) for every vocabulary entry; words word2vec never saw
    (special tokens) get small random vectors.

    Returns
    -------
    (len(itos), dim) float32 array.
    """
    from gensim.models import Word2Vec

    rng = np.random.default_rng(seed)
    mat = rng.normal(0.0, 0.1, (len(itos), dim)).astype(np.float32)
    sentences = [t for t in token_lists if t]
    if not sentences:
        return mat
    w2v = Word2Vec(sentences=sentences, vector_size=dim, window=window, min_count=1, sg=1, workers=1,
                   seed=seed, epochs=epochs)
    for idx, word in enumerate(itos):
        if word in w2v.wv.key_to_index:
            mat[idx] = w2v.wv[word]
    return mat


def _embedding(vocab_size: int, dim: int, pad_id: int, pretrained: np.ndarray | None) -> nn.Embedding:
    emb = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
    if pretrained is not None:
        if pretrained.shape != (vocab_size, dim):
            raise ValueError(f"pretrained embeddings have shape {pretrained.shape}, expected {(vocab_size, dim)}")
        with torch.no_grad():
            emb.weight.copy_(torch.as_tensor(pretrained))
            emb.weight[pad_id].zero_()
    return emb


class DocumentEncoder(nn.Module):
    """Review-document encoder: embeddings -> bi-GRU -> [fwd_T, bwd_T] -> mean over the document.

    Parameters
    ----------
    vocab_size, emb_dim : int
        Vocabulary size and word-vector dimension k.
    n_factors : int
        D, the dimension of the textual features (must be even: D/2 units per direction).
    pad_id : int
        Padding token id.
    pretrained : (vocab_size, emb_dim) array, optional
        word2vec initialization, fine-tuned by back-propagation.
    """

    def __init__(self, vocab_size: int, emb_dim: int, n_factors: int, pad_id: int = 0,
                 pretrained: np.ndarray | None = None) -> None:
        super().__init__()
        if n_factors % 2:
            raise ValueError(f"n_factors must be even (D/2 GRU units per direction), got {n_factors}")
        self.embed = _embedding(vocab_size, emb_dim, pad_id, pretrained)
        self.gru = nn.GRU(emb_dim, n_factors // 2, batch_first=True, bidirectional=True)

    def encode_reviews(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(R, T) token ids and (R,) lengths -> (R, D) review vectors h_T."""
        x = self.embed(tokens)                                                    # (R, T, k)
        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        _, h_n = self.gru(packed)                                                 # (2, R, D/2)
        return torch.cat([h_n[0], h_n[1]], dim=-1)                                # (R, D)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, doc_ids: torch.Tensor, n_docs: int) -> torch.Tensor:
        """Average the review vectors per document: (R, T), (R,), (R,) doc index -> (n_docs, D).

        A document without reviews gets the zero vector.
        """
        h = self.encode_reviews(tokens, lengths)                                  # (R, D)
        sums = h.new_zeros(n_docs, h.shape[1]).index_add(0, doc_ids, h)           # (n_docs, D)
        counts = torch.bincount(doc_ids, minlength=n_docs).clamp(min=1).to(h.dtype)
        return sums / counts[:, None]


class EntityEncoder(nn.Module):
    """MT-encoder ablation (Table 2): the document encoder replaced by an embedding lookup."""

    def __init__(self, n_entities: int, n_factors: int) -> None:
        super().__init__()
        self.table = nn.Embedding(n_entities, n_factors)
        nn.init.normal_(self.table.weight, 0.0, 0.1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table(ids)                                                    # (B, D)


class ReviewDecoder(nn.Module):
    """GRU review decoder conditioned on textual features at every step (Eq. 1).

    Parameters
    ----------
    vocab_size, emb_dim : int
        Output vocabulary and word-vector size.
    hidden : int
        GRU units.
    cond_dim : int
        Size of the condition vector (D for MT-U/MT-I, 2D for MT-P).
    banned_ids : sequence of int
        Tokens the decoder never outputs (padding and start token): their logits are -inf, so
        the softmax runs over the ``vocab_size - len(banned_ids)`` outputtable tokens.
    """

    def __init__(self, vocab_size: int, emb_dim: int, hidden: int, cond_dim: int, pad_id: int = 0,
                 pretrained: np.ndarray | None = None, banned_ids: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = _embedding(vocab_size, emb_dim, pad_id, pretrained)
        self.gru = nn.GRU(emb_dim + cond_dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab_size)
        ban = torch.zeros(vocab_size)
        ban[list(banned_ids)] = float("-inf")
        self.register_buffer("ban", ban)

    @property
    def n_outputs(self) -> int:
        """Number of tokens the softmax ranges over."""
        return int(torch.isfinite(self.ban).sum())

    def forward(self, cond: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: cond (B, C), inputs (B, T) = [BOS, y_1..y_{T-1}] -> logits (B, T, V)."""
        x = self.embed(inputs)                                                    # (B, T, k)
        c = cond[:, None, :].expand(-1, inputs.shape[1], -1)                      # (B, T, C)
        h, _ = self.gru(torch.cat([x, c], dim=-1))                                # (B, T, H), h_0 = 0
        return self.out(h) + self.ban                                             # (B, T, V)

    def step(self, cond: torch.Tensor, token: torch.Tensor, h: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """One decoding step: cond (B, C), token (B,), h (1, B, H) or None -> logits (B, V), h."""
        x = torch.cat([self.embed(token), cond], dim=-1)[:, None, :]             # (B, 1, k + C)
        out, h = self.gru(x, h)                                                   # (B, 1, H)
        return self.out(out[:, 0]) + self.ban, h

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, max_len: int, bos_id: int, eos_id: int, pad_id: int = 0, *,
               prefix: torch.Tensor | None = None, greedy: bool = False,
               generator: torch.Generator | None = None, min_len: int = 0) -> torch.Tensor:
        """Decode until EOS or ``max_len`` tokens; optionally continue a given ``prefix`` (B, t).
        EOS is barred at positions before ``min_len``.

        Returns (B, max_len) token ids: the prefix, then sampled (or argmax) tokens, EOS included,
        PAD after the end.
        """
        b = cond.shape[0]
        out = torch.full((b, max_len), pad_id, dtype=torch.long, device=cond.device)
        done = torch.zeros(b, dtype=torch.bool, device=cond.device)
        token = torch.full((b,), bos_id, dtype=torch.long, device=cond.device)
        h = None
        start = 0
        if prefix is not None and prefix.shape[1] > 0:
            start = prefix.shape[1]
            out[:, :start] = prefix
            inputs = torch.cat([token[:, None], prefix[:, :-1]], dim=1)          # (B, t)
            x = torch.cat([self.embed(inputs), cond[:, None, :].expand(-1, start, -1)], dim=-1)
            _, h = self.gru(x)
            token = prefix[:, -1]
            done = ((prefix == eos_id) | (prefix == pad_id)).any(dim=1)
        for t in range(start, max_len):
            logits, h = self.step(cond, token, h)                                 # (B, V)
            if t < min_len:
                logits = logits.index_fill(1, torch.tensor([eos_id], device=logits.device), float("-inf"))
            if greedy:
                token = logits.argmax(dim=-1)
            else:
                token = _sample_categorical(logits, generator)
            token = torch.where(done, torch.full_like(token, pad_id), token)
            out[:, t] = token
            done = done | (token == eos_id)
            if bool(done.all()):
                break
        return out


def _sample_categorical(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One draw per row of softmax(logits) (B, V) -> (B,) by inverting the CDF.

    Hand-rolled because ``torch.multinomial`` is ~10x slower on CPU for one draw from a few
    thousand classes (it dominated the Monte Carlo rollouts); zero-probability tokens are never
    drawn since u > 0 and ``searchsorted`` returns the first index whose CDF reaches u.
    """
    cdf = torch.softmax(logits, dim=-1).cumsum(dim=-1)                            # (B, V)
    u = torch.rand(cdf.shape[0], 1, generator=generator, device=cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u).clamp(max=cdf.shape[1] - 1)[:, 0]


def shift_right(targets: torch.Tensor, bos_id: int, pad_id: int, eos_id: int) -> torch.Tensor:
    """Decoder inputs [BOS, y_1, ..., y_{T-1}] for targets (B, T) (EOS fed back as PAD)."""
    inputs = torch.cat([torch.full_like(targets[:, :1], bos_id), targets[:, :-1]], dim=1)
    return inputs.masked_fill(inputs == eos_id, pad_id)


def sequence_log_probs(decoder: ReviewDecoder, cond: torch.Tensor, targets: torch.Tensor, bos_id: int,
                       pad_id: int, eos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(y_t | cond, y_<t) of every target token (B, T) and the mask of real tokens (B, T)."""
    logits = decoder(cond, shift_right(targets, bos_id, pad_id, eos_id))        # (B, T, V)
    logp = torch.log_softmax(logits, dim=-1).gather(-1, targets[:, :, None])[:, :, 0]  # (B, T)
    real = targets != pad_id
    return torch.where(real, logp, torch.zeros_like(logp)), real.to(logp.dtype)
