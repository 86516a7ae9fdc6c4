"""SEMA and SEMAX: semantic meanings and temporal dynamics, with and without the related task.

SEMAX (IEEE Access; extends SEMA) predicts the rating of user ``u`` on item ``v`` from

* the *recommendation task* (SEMA, Sec. III-D): a word-level LSTM embeds every earlier review of
  ``u`` and of ``v`` (Eq. 12, last hidden state), a user LSTM and an item LSTM run over these
  chronologically ordered review embeddings (Eqs. 13-14), and a two-layer network on
  ``[u, v, h_u, h_v]`` gives the rating (Eqs. 15-16);
* the *related task* (Sec. III-C, training only): an LSTM over the target review, user-item
  attention over its hidden states (Eqs. 7-9) and a two-layer network on ``[y, u, v]`` giving the
  text rating (Eqs. 10-11);
* the loss ``beta * L1 + (1 - beta) * (L2 + lambda * L3)`` (Eqs. 17-20) with ``L3 = ||z_y - z_uv||^2``.

Choices where the paper is silent (its Table 2 of hyper-parameters is an image missing from our
text): one dimension ``dim`` for D1..D5 (the paper says it used one value for all), separate
word-level LSTMs for the two tasks with *shared word embeddings* (the paper only says the
embeddings are shared), one word-level LSTM shared by the user and item sides of the
recommendation task, separate user and item history LSTMs (symmetric structure), zero dynamic
state for an empty history, Adam instead of plain SGD, and the training-mean rating as a fixed
output offset (Eqs. 11 and 16 have no bias).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...search_space import Int, LogFloat
from ..registry import RATING, register
from .base import NeuralRatingModel, ReviewBatch
from .inputs import ReviewCorpus
from .layers import SequenceLSTM, UserItemAttention, WordLSTM, gather_sequence


class SEMANet(nn.Module):
    """The network of SEMA (``related=False``) or SEMAX (``related=True``)."""

    def __init__(self, n_users: int, n_items: int, vocab_size: int, dim: int, pad_id: int, related: bool) -> None:
        super().__init__()
        self.user_factors = nn.Embedding(n_users, dim)  # u in R^{D1}
        self.item_factors = nn.Embedding(n_items, dim)  # v in R^{D1}
        nn.init.normal_(self.user_factors.weight, std=0.1)
        nn.init.normal_(self.item_factors.weight, std=0.1)
        self.words = nn.Embedding(vocab_size, dim, padding_idx=pad_id)  # X, shared by both tasks
        # recommendation task
        self.review_lstm = WordLSTM(dim, dim)  # Eq. 12
        self.user_lstm = SequenceLSTM(dim, dim)  # Eq. 13
        self.item_lstm = SequenceLSTM(dim, dim)  # Eq. 14
        self.rec_hidden = nn.Linear(4 * dim, dim)  # W, b of Eq. 15
        self.rec_out = nn.Linear(dim, 1, bias=False)  # w of Eq. 16
        self.related = related
        if related:
            self.text_lstm = WordLSTM(dim, dim)  # Eqs. 1-6
            self.attention = UserItemAttention(dim, dim, dim)  # Eqs. 7-9
            self.text_hidden = nn.Linear(3 * dim, dim)  # W_y, b_y of Eq. 10
            self.text_out = nn.Linear(dim, 1, bias=False)  # w_y of Eq. 11

    def recommend(self, batch: ReviewBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(r_uv, z_uv)`` from the histories (Eqs. 12-16); never reads the target review."""
        u, v = self.user_factors(batch.users), self.item_factors(batch.items)  # (B, D)
        _, review_emb = self.review_lstm(self.words(batch.hist_tokens), batch.hist_lengths)  # (U, D)
        h_u = self.user_lstm(*gather_sequence(review_emb, batch.user_hist))  # (B, D)
        h_v = self.item_lstm(*gather_sequence(review_emb, batch.item_hist))  # (B, D)
        z = torch.relu(self.rec_hidden(torch.cat([u, v, h_u, h_v], dim=-1)))  # (B, D)  Eq. 15
        return self.rec_out(z).squeeze(-1), z  # (B,), (B, D)  Eq. 16

    def relate(self, batch: ReviewBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(r_y, z_y, alpha)`` of the related task on the target review (Eqs. 1-11)."""
        if batch.tokens is None:
            raise ValueError("the related task needs the target review (training batches only)")
        u, v = self.user_factors(batch.users), self.item_factors(batch.items)  # (B, D)
        states, _ = self.text_lstm(self.words(batch.tokens), batch.lengths)  # (B, T, D)
        mask = torch.arange(batch.tokens.size(1), device=batch.tokens.device)[None, :] < batch.lengths[:, None]  # (B, T)
        y, alpha = self.attention(states, mask, u, v)  # (B, D), (B, T)
        z_y = torch.relu(self.text_hidden(torch.cat([y, u, v], dim=-1)))  # (B, D)  Eq. 10
        return self.text_out(z_y).squeeze(-1), z_y, alpha  # Eq. 11


#: what the tuning of SEMA and SEMAX explores (Table 2 of the paper, its hyper-parameters, is missing from our text)
SEMA_SPACE = {"dim": Int(8, 128, log=True), "lr": LogFloat(1e-4, 1e-2), "weight_decay": LogFloat(1e-8, 1e-3)}


@register("SEMA", role=RATING, search_space=SEMA_SPACE,
          source="SEMAX paper, Sec. III-D (the recommendation task alone; the paper's ablation of SEMAX)")
class SEMA(NeuralRatingModel):
    """SEMA: the recommendation task alone, trained on ``L1`` (Eq. 17).

    Parameters
    ----------
    dim : int
        D1 = D2 = D3 = D4 = D5 (latent factors, word and text embeddings, feature layer).
    **kwargs
        Training options of :class:`~xrec_core.models.semax.base.NeuralRatingModel`.
    """

    name = "SEMA"

    def __init__(self, *, dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dim = dim

    def _build(self, corpus: ReviewCorpus) -> nn.Module:
        return SEMANet(corpus.n_users, corpus.n_items, corpus.vocab_size, self.dim, corpus.pad_id, related=False)

    def _loss(self, batch: ReviewBatch, target: torch.Tensor) -> torch.Tensor:
        pred, _ = self.net.recommend(batch)
        return ((target - pred) ** 2).mean()  # L1, Eq. 17

    def _predict_batch(self, batch: ReviewBatch) -> torch.Tensor:
        return self.net.recommend(batch)[0]


@register("SEMAX", role=RATING,
          search_space={**SEMA_SPACE, "lam": LogFloat(0.01, 10.0)},  # beta is Figure 6's sweep, not tuned
          source="SEMAX paper, Sec. III (Eq. 20)")
class SEMAX(SEMA):
    """SEMAX: SEMA plus the related task, trained on Eq. 20.

    Parameters
    ----------
    dim : int
        D1..D5.
    beta : float
        Weight of the recommendation task in Eq. 20 (the paper finds the best near 0.4, Fig. 6).
    lam : float
        lambda of Eq. 20, the weight of ``L3 = ||z_y - z_uv||^2`` (Eq. 19).
    **kwargs
        Training options of :class:`~xrec_core.models.semax.base.NeuralRatingModel`.
    """

    name = "SEMAX"
    uses_target_text = True

    def __init__(self, *, dim: int, beta: float, lam: float, **kwargs) -> None:
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must lie in [0, 1], got {beta}")
        if lam < 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        super().__init__(dim=dim, **kwargs)
        self.beta, self.lam = beta, lam

    def _build(self, corpus: ReviewCorpus) -> nn.Module:
        return SEMANet(corpus.n_users, corpus.n_items, corpus.vocab_size, self.dim, corpus.pad_id, related=True)

    def loss_terms(self, batch: ReviewBatch, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Batch means of L1, L2, L3 (Eqs. 17-19) and the total of Eq. 20."""
        r_uv, z_uv = self.net.recommend(batch)
        r_y, z_y, _ = self.net.relate(batch)
        l1 = ((target - r_uv) ** 2).mean()  # Eq. 17
        l2 = ((target - r_y) ** 2).mean()  # Eq. 18
        l3 = ((z_y - z_uv) ** 2).sum(-1).mean()  # Eq. 19
        total = self.beta * l1 + (1.0 - self.beta) * (l2 + self.lam * l3)  # Eq. 20
        return {"L1": l1, "L2": l2, "L3": l3, "total": total}

    def _loss(self, batch: ReviewBatch, target: torch.Tensor) -> torch.Tensor:
        return self.loss_terms(batch, target)["total"]

    @torch.no_grad()
    def attention(self, corpus: ReviewCorpus, idx: np.ndarray) -> list[np.ndarray]:
        """Attention weights ``alpha`` (Eq. 8) over the words of the reviews ``idx`` (for inspection)."""
        idx = np.asarray(idx, dtype=np.int64)
        self.net.eval()
        batch = ReviewBatch.make(corpus, idx, self.device_, with_target=True)
        _, _, alpha = self.net.relate(batch)
        return [alpha[k, : int(batch.lengths[k])].cpu().numpy() for k in range(len(idx))]
