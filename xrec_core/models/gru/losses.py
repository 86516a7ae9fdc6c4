"""Costs of "Ask the GRU": the weighted squared rating loss (eq. 2) and the weighted tag log-loss (Sec. 3.3)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def confidence_weights(n_likes: np.ndarray, alpha: float = 10.0, eps: float = 1e-8) -> np.ndarray:
    """``c_ij = 1 + alpha * log(1 + |R_i| / eps)`` (Sec. 4.1.2), one value per user.

    The same weight is used for the sampled positive and negative (the paper does not weight them
    differently; sampling one negative per positive down-weights the negatives implicitly).
    """
    n = np.asarray(n_likes, dtype=np.float64)
    if (n < 0).any():
        raise ValueError("like counts must be non-negative")
    return 1.0 + alpha * np.log1p(n / eps)


def rating_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Eq. (2) without the regulariser: ``mean(c_ij (r_hat_ij - r_ij)^2)`` over the sampled pairs ``(B,)``."""
    return (weight * (pred - target) ** 2).mean()


def tag_loss(logits: torch.Tensor, tags: torch.Tensor, neg_weight: float = 0.01) -> torch.Tensor:
    """``C_T``: the negated weighted binary log-likelihood of Sec. 3.3, averaged over the ``(B, N_t)`` entries.

    ``-(t log p + c' (1 - t) log(1 - p))`` with ``c' = neg_weight`` down-weighting the unobserved
    tags. The paper does not give ``c'``; we use 0.01, the ratio b/a of CTR's confidence weights.
    """
    w = tags + neg_weight * (1.0 - tags)  # (B, N_t)
    return F.binary_cross_entropy_with_logits(logits, tags, weight=w, reduction="mean")
