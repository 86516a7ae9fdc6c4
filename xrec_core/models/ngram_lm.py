"""Interpolated n-gram language model (the "N-gram" baseline of the MT paper, Table 3).

Docs
----
The MT paper (Lu, Dong & Smyth 2018, Sec. 4.2, baseline (i)) uses "the linear interpolation of
unigram, bigram, and trigram for smoothing the probability distribution" -- Jelinek-Mercer
smoothing (Jelinek & Mercer 1980; Jurafsky & Martin, ch. 3). Our model is

``p(w | u, v) = sum_k lambda_k a_k(u, v) p_k(w | .) / sum_k lambda_k a_k(u, v)``

with components ``p_0 = 1 / |O|`` (uniform over the output vocabulary, so that words never seen
in training keep a non-zero probability), ``p_1`` the maximum-likelihood unigram, ``p_2(w | v)``
the ML bigram and ``p_3(w | u, v)`` the ML trigram. ``a_k`` is 1 when the component's history
occurred in training and 0 otherwise: an unseen history's weight is shared among the lower
orders in proportion to their weights, so the distribution always sums to one. Histories at the
start of a review are padded with ``<BOS>``. The weights ``lambda`` are tuned by maximising the
log-likelihood of a held-out 10% of the training reviews (counts from the other 90%; L-BFGS
over the simplex), after which the counts are re-estimated on all training reviews -- the
classic "deleted interpolation" recipe. ``n=1, 2, 3`` give the unigram, bigram and trigram
rows. Counting is vectorised: n-grams are packed into int64 keys and counted with ``numpy``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.special import softmax

from ..metrics.language import perplexity_from_nll
from ..search_space import Int
from .lm_base import TokenLM, Tokens
from .registry import GENERATION, register

log = logging.getLogger(__name__)


class _Counts:
    """ML n-gram statistics of one set of sequences, as sorted int64 keys and counts."""

    def __init__(self, seqs: list[np.ndarray], n: int, vocab_size: int, bos_id: int) -> None:
        V = vocab_size
        self.V, self.n = V, n
        tgt, h1, h2 = _histories(seqs, bos_id)  # (N,) each
        self.uni = np.bincount(tgt, minlength=V).astype(np.float64)  # (V,)
        self.total = float(self.uni.sum())
        # history -> (sorted keys of history*V + w, their counts, history totals)
        self.tables = []
        if n >= 2:
            self.tables.append(_table(h1, tgt, V))
        if n >= 3:
            self.tables.append(_table(h2 * V + h1, tgt, V))

    def component_probs(self, tgt: np.ndarray, h1: np.ndarray, h2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, n)`` ML probabilities of unigram..n-gram for each target, and availability mask."""
        V = self.V
        probs = [self.uni[tgt] / self.total]
        avail = [np.ones(len(tgt), dtype=bool)]
        hists = [h1, h2 * V + h1]
        for (keys, counts, hkeys, htot), hist in zip(self.tables, hists):
            c = _lookup(keys, counts, hist * V + tgt)
            ht = _lookup(hkeys, htot, hist)
            ok = ht > 0
            p = np.zeros(len(tgt))
            p[ok] = c[ok] / ht[ok]
            probs.append(p)
            avail.append(ok)
        return np.stack(probs, 1), np.stack(avail, 1)

    def distribution(self, h1: int, h2: int) -> tuple[np.ndarray, np.ndarray]:
        """``(n, V)`` ML distributions of every order for one history, and their availability."""
        V = self.V
        rows = [self.uni / self.total]
        avail = [True]
        for (keys, counts, hkeys, htot), hist in zip(self.tables, (h1, h2 * V + h1)):
            row = np.zeros(V)
            lo, hi = np.searchsorted(keys, [hist * V, hist * V + V])
            total = _lookup(hkeys, htot, np.array([hist]))[0]
            if total > 0:
                row[keys[lo:hi] - hist * V] = counts[lo:hi] / total
            rows.append(row)
            avail.append(total > 0)
        return np.stack(rows), np.array(avail)


def _histories(seqs: list[np.ndarray], bos_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Targets and their previous one/two tokens (``<BOS>``-padded), concatenated over sequences."""
    tgt = np.concatenate(seqs)
    h1 = np.concatenate([np.concatenate([[bos_id], s[:-1]]) for s in seqs]).astype(np.int64)
    h2 = np.concatenate([np.concatenate([[bos_id, bos_id], s[:-2]])[: len(s)] for s in seqs]).astype(np.int64)
    return tgt, h1, h2


def _table(hist: np.ndarray, tgt: np.ndarray, V: int):
    keys, counts = np.unique(hist * V + tgt, return_counts=True)
    hkeys, htot = np.unique(hist, return_counts=True)
    return keys, counts.astype(np.float64), hkeys, htot.astype(np.float64)


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``values`` at ``query`` keys (0 where absent); ``keys`` sorted."""
    pos = np.clip(np.searchsorted(keys, query), 0, max(len(keys) - 1, 0))
    out = np.zeros(len(query))
    if len(keys):
        hit = keys[pos] == query
        out[hit] = values[pos[hit]]
    return out


@register("N-gram", role=GENERATION, search_space={"n": Int(1, 3)}, source="Jelinek & Mercer 1980 (MT paper baseline i)")
class InterpolatedNgramLM(TokenLM):
    """Jelinek-Mercer interpolated n-gram LM with held-out tuned weights (MT paper baseline (i)).

    Parameters
    ----------
    vocab : xrec_core.data.text.Vocabulary
        Shared vocabulary.
    n : {1, 2, 3}
        Highest order (1 = unigram, 2 = bigram, 3 = trigram, the paper's "N-gram").
    heldout_frac : float
        Fraction of the training reviews held out to tune the interpolation weights.
    seed : int
        Seed of the held-out split.
    """

    def __init__(self, vocab, n: int = 3, heldout_frac: float = 0.1, seed: int = 0) -> None:
        super().__init__(vocab)
        if n not in (1, 2, 3):
            raise ValueError(f"n must be 1, 2 or 3, got {n}")
        if not 0.0 < heldout_frac < 1.0:
            raise ValueError(f"heldout_frac must be in (0, 1), got {heldout_frac}")
        self.n, self.heldout_frac, self.seed = n, heldout_frac, seed
        self.weights = np.full(n + 1, 1.0 / (n + 1))  # (n+1,) uniform, unigram, bigram, trigram

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, train_token_lists: Sequence[Tokens], users=None, items=None) -> "InterpolatedNgramLM":
        """Count n-grams, tune the interpolation weights on held-out reviews, recount on all."""
        seqs = self.encode(train_token_lists)
        if len(seqs) < 2:
            raise ValueError("InterpolatedNgramLM needs at least two training reviews")
        rng = np.random.default_rng(self.seed)
        perm = rng.permutation(len(seqs))
        n_held = max(1, int(round(self.heldout_frac * len(seqs))))
        held, rest = [seqs[i] for i in perm[:n_held]], [seqs[i] for i in perm[n_held:]]
        counts = _Counts(rest, self.n, self.vocab_size, self.bos_id)
        self.weights = self._tune(counts, held)
        log.info("n-gram (n=%d) interpolation weights (uniform, 1..n): %s", self.n, np.round(self.weights, 4))
        self.counts = _Counts(seqs, self.n, self.vocab_size, self.bos_id)
        self.fitted = True
        return self

    def _component_matrix(self, counts: _Counts, seqs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        tgt, h1, h2 = _histories(seqs, self.bos_id)
        probs, avail = counts.component_probs(tgt, h1, h2)  # (N, n), (N, n)
        uniform = np.where(self.output_mask[tgt], 1.0 / self.n_outputs, 0.0)[:, None]
        return np.hstack([uniform, probs]), np.hstack([np.ones_like(uniform, dtype=bool), avail])

    def _tune(self, counts: _Counts, held: list[np.ndarray]) -> np.ndarray:
        P, A = self._component_matrix(counts, held)  # (N, K)
        A = A.astype(np.float64)

        def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
            lam = softmax(theta)  # (K,)
            num = P @ lam  # (N,)
            den = A @ lam  # (N,)
            p = num / den
            value = -np.log(p).sum()
            # d(-log p)/d lam_k = -(P_k / num - A_k / den); chain rule through the softmax
            g_lam = -(P / num[:, None] - A / den[:, None]).sum(0)
            return float(value), lam * (g_lam - lam @ g_lam)

        res = minimize(nll, np.zeros(P.shape[1]), jac=True, method="L-BFGS-B")
        return softmax(res.x)

    # -- probabilities ---------------------------------------------------------------------
    def _mix(self, P: np.ndarray, A: np.ndarray) -> np.ndarray:
        w = A * self.weights  # (..., K)
        return (P * w).sum(-1) / w.sum(-1)

    def token_log_probs(self, token_lists: Sequence[Tokens]) -> np.ndarray:
        """Natural-log probability of every target token (words and ``<EOS>``), concatenated."""
        self._check_fitted()
        P, A = self._component_matrix(self.counts, self.encode(token_lists))
        return np.log(self._mix(P, A))

    def next_distribution(self, history: Sequence[str]) -> np.ndarray:
        """``(len(vocab),)`` probabilities of the next token after ``history`` (words, no ``<BOS>``)."""
        self._check_fitted()
        ids = [self.bos_id, self.bos_id] + list(self.vocab.encode(list(history)))
        return self._distribution_ids(ids[-1], ids[-2])

    def _distribution_ids(self, h1: int, h2: int) -> np.ndarray:
        rows, avail = self.counts.distribution(h1, h2)  # (n, V), (n,)
        uniform = self.output_mask / self.n_outputs
        P = np.vstack([uniform, rows])  # (K, V)
        w = np.concatenate([[True], avail]) * self.weights  # (K,)
        return (w @ P) / w.sum()

    def perplexity(self, token_lists: Sequence[Tokens], users=None, items=None) -> float:
        """``exp`` of the mean NLL per token (words + ``<EOS>``) of ``token_lists``."""
        lp = self.token_log_probs(token_lists)
        return perplexity_from_nll(float(-lp.sum()), len(lp))

    def generate(self, users=None, items=None, max_len: int = 30, seed: int = 0, min_len: int = 0) -> list[list[str]]:
        """One sampled review per entry of ``users``/``items`` (the model ignores who asks), ``<EOS>``
        barred before ``min_len`` words (interpolation gives ``<EOS>`` its unigram mass at every step,
        the first included)."""
        self._check_fitted()
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(self._n_requests(users, items)):
            ids = [self.bos_id, self.bos_id]
            for _ in range(max_len):
                p = self._distribution_ids(ids[-1], ids[-2])
                p[self.unk_id] = 0.0
                if len(ids) - 2 < min_len:
                    p[self.eos_id] = 0.0
                nxt = int(rng.choice(self.vocab_size, p=p / p.sum()))
                if nxt == self.eos_id:
                    break
                ids.append(nxt)
            out.append(self.decode(ids[2:]))
        return out

