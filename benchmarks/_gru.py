"""The GRU chapter's text recommender on synthetic likes and texts, for the speed benchmarks.

Built through the registry with the paper config's values (``GRUConfig`` at scale ``paper``) so
that a benchmark times the model the chapter trains; only the sizes being measured are overridden.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp


def synthetic_text_data(tiny: bool, seed: int = 0) -> Any:
    """Random likes (7 per user) and random word sequences of 10-30 words per item."""
    from xrec_core.models.gru import pad_tokens
    from xrec_core.models.gru.model import TextRecData

    rng = np.random.default_rng(seed)
    n_users, n_items, vocab = (200, 150, 300) if tiny else (5000, 3000, 2000)
    tokens = pad_tokens([rng.integers(5, vocab, size=rng.integers(10, 31)).tolist() for _ in range(n_items)])
    n = 7 * n_users
    likes = sp.csr_matrix((np.ones(n), (rng.integers(0, n_users, n), rng.integers(0, n_items, n))), shape=(n_users, n_items))
    likes.data[:] = 1
    return TextRecData(likes, tokens, vocab)


def text_recommender(encoder: str, *, k: int, k_h1: int, batch_users: int, updates: int, device: str = "cpu") -> Any:
    """``GRU`` or ``Embed`` with the paper's settings, ``updates`` minibatch updates in one epoch (no early stop)."""
    from xrec_core.experiments.gru import GRUConfig
    from xrec_core.experiments.gru.protocol import text_model_params
    from xrec_core.models.registry import build

    name = "GRU" if encoder == "gru" else "Embed"
    cfg = GRUConfig.from_scale("paper", dataset="mter-cellphones")
    params = {**text_model_params(name, cfg, seed=0), "k": k, "k_h1": k_h1, "batch_users": batch_users,
              "max_updates": updates, "updates_per_epoch": updates, "patience": 1, "device": device, "progress": False}
    return build(name, **params)
