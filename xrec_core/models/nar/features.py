"""The user and item feature vectors of Eq. 1 (after EFM, Zhang et al. 2014).

For user ``u`` and feature ``k`` with ``t_uk`` mentions over the user's training reviews, and
item ``i`` with ``t_ik`` mentions of average sentiment ``s_ik`` in ``[-1, 1]``::

    f_u^k = 1 + (T - 1) * (2 / (1 + exp(-t_uk)) - 1)
    f_i^k = 1 + (T - 1) / (1 + exp(-t_ik * s_ik))

Both lie in ``[1, T]`` (``T`` = the highest rating). Features never mentioned are 0, as in EFM
(the paper's text is silent on them; a 0 keeps "not mentioned" apart from "mentioned once").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mention_counts(users: Sequence[int], items: Sequence[int], mentions: Sequence[Sequence[tuple[int, int]]],
                   n_users: int, n_items: int, n_features: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``t_u`` (n_users, P) mention counts, ``t_i`` (n_items, P) counts and ``s_i`` (n_items, P) mean sentiment."""
    t_u = np.zeros((n_users, n_features))
    t_i = np.zeros((n_items, n_features))
    sent = np.zeros((n_items, n_features))
    for u, i, ms in zip(users, items, mentions):
        for m in ms:
            k, s = int(m[0]), int(m[1])
            t_u[u, k] += 1
            t_i[i, k] += 1
            sent[i, k] += s
    s_i = np.divide(sent, t_i, out=np.zeros_like(sent), where=t_i > 0)
    return t_u, t_i, s_i


def user_features(t_u: np.ndarray, T: float = 5.0) -> np.ndarray:
    """Eq. 1, left: frequency-based user vectors in [1, T]; unmentioned features 0."""
    f = 1.0 + (T - 1.0) * (2.0 / (1.0 + np.exp(-t_u)) - 1.0)
    return np.where(t_u > 0, f, 0.0)


def item_features(t_i: np.ndarray, s_i: np.ndarray, T: float = 5.0) -> np.ndarray:
    """Eq. 1, right: frequency x sentiment item vectors in [1, T]; unmentioned features 0."""
    f = 1.0 + (T - 1.0) / (1.0 + np.exp(-t_i * s_i))
    return np.where(t_i > 0, f, 0.0)
