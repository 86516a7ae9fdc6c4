"""Skip-gram log-linear language model (the "Skip-gram" baseline of the MT paper, Table 3).

Docs
----
The MT paper's baseline (ii) is "the skip-gram model [32] ... a log-linear language model that
predicts the probability of next word given the context", citing word2vec (Mikolov et al. 2013).
The skip-gram model scores a (context word, predicted word) pair by the inner product of an
*input* vector ``v_c`` and an *output* vector ``v'_w``, ``p(w | c) = softmax_w(v'_w . v_c)``, and
is position-independent within its window. Our reading, turned into a proper language model:
the next word is predicted from the ``window`` previous words (``<BOS>`` included) by the
product of their skip-gram experts, renormalised -- a log-linear model

``p(w_t | w_{t-c} .. w_{t-1}) = softmax_w( b_w + (1/c) sum_{k=1..c} v'_w . v_{w_{t-k}} )``

(the normalised geometric mean of the ``c`` skip-gram experts; ``c`` is smaller at the start of
a review) whose parameters are the skip-gram input and output vectors plus a word bias. Input
and output vectors are initialised from gensim's skip-gram word2vec (``sg=1``, negative sampling,
trained on the training reviews with the same window, a stable hash so runs repeat) and the
bias from the log unigram frequencies plus ``log(negative)``: with negative sampling
``v'_w . v_c`` approximates ``PMI(w, c) - log(negative)`` (Levy & Goldberg 2014), so the initial
model is ``p(w) exp(mean_k PMI(w, c_k))``, a calibrated start. Everything is then fine-tuned by
maximum likelihood with the full softmax, because negative-sampling scores are not normalised
probabilities and perplexity needs them to be. Defaults follow word2vec (100-d vectors,
window 5).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..search_space import Int, LogFloat
from .lm_base import NeuralTokenLM, Tokens
from .registry import GENERATION, register


def _stable_hash(text: str) -> int:
    """Deterministic replacement for Python's salted ``hash`` in gensim's vector initialisation."""
    return zlib.crc32(text.encode("utf-8"))


class SkipGramNet(nn.Module):
    """Mean of the input vectors of the last ``window`` tokens, scored against every output vector."""

    def __init__(self, vocab_size: int, pad_id: int, dim: int, window: int) -> None:
        super().__init__()
        self.window = window
        self.inp = nn.Embedding(vocab_size, dim, padding_idx=pad_id)  # v_c
        self.out = nn.Linear(dim, vocab_size)  # v'_w and b_w

    def features(self, inp: torch.Tensor, users=None, items=None) -> torch.Tensor:
        x = self.inp(inp)  # (B, T, d)
        cs = torch.cumsum(x, 1)  # (B, T, d)
        shifted = F.pad(cs, (0, 0, self.window, 0))[:, : inp.shape[1]]  # cs[t - window], 0 before the start
        n = torch.arange(1, inp.shape[1] + 1, device=inp.device).clamp(max=self.window)  # (T,) positions summed
        return (cs - shifted) / n[None, :, None]  # (B, T, d) mean over positions t-window+1 .. t

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        return self.out(feats)  # (B, T, V)


@register("Skip-gram", role=GENERATION, search_space={"dim": Int(16, 256, log=True), "window": Int(2, 8), "lr": LogFloat(1e-4, 1e-2)},
          source="Mikolov et al. 2013 (MT paper baseline ii)")
class SkipGramLM(NeuralTokenLM):
    """Log-linear next-word model built from skip-gram input/output vectors (MT paper baseline (ii)).

    Parameters
    ----------
    vocab : xrec_core.data.text.Vocabulary
        Shared vocabulary.
    dim : int
        Vector size (word2vec default 100).
    window : int
        Number of previous tokens that predict the next one (word2vec default 5).
    init_word2vec : bool
        Initialise input/output vectors from gensim skip-gram trained on the training reviews.
    w2v_epochs, negative : gensim word2vec epochs and negative samples.
    **train : training options of :class:`~xrec_core.models.lm_base.NeuralTokenLM`.
    """

    def __init__(self, vocab, dim: int = 100, window: int = 5, init_word2vec: bool = True, w2v_epochs: int = 5,
                 negative: int = 5, **train) -> None:
        super().__init__(vocab, **train)
        if window < 1 or dim < 1:
            raise ValueError(f"window and dim must be >= 1, got {window}, {dim}")
        self.dim, self.window, self.init_word2vec = dim, window, init_word2vec
        self.w2v_epochs, self.negative = w2v_epochs, negative

    def _build_net(self, n_users: int, n_items: int, train_token_lists: Sequence[Tokens]) -> nn.Module:
        net = SkipGramNet(self.vocab_size, self.pad_id, self.dim, self.window)
        if self.init_word2vec:
            self._init_from_word2vec(net, train_token_lists)
        return net

    def _init_from_word2vec(self, net: SkipGramNet, train_token_lists: Sequence[Tokens]) -> None:
        from gensim.models import Word2Vec

        sentences = [[str(self.bos_id)] + [str(i) for i in s] for s in self.encode(train_token_lists)]
        w2v = Word2Vec(sentences, vector_size=self.dim, window=self.window, sg=1, hs=0, negative=self.negative,
                       min_count=1, workers=1, seed=self.seed, epochs=self.w2v_epochs, hashfxn=_stable_hash)
        ids = np.array([int(k) for k in w2v.wv.index_to_key])
        with torch.no_grad():
            net.inp.weight[torch.from_numpy(ids)] = torch.from_numpy(w2v.wv.vectors.copy())
            net.out.weight[torch.from_numpy(ids)] = torch.from_numpy(w2v.syn1neg.copy())
            net.inp.weight[self.pad_id] = 0.0
            net.out.bias.copy_(torch.from_numpy(self.log_unigram(train_token_lists) + np.log(self.negative)).float())
