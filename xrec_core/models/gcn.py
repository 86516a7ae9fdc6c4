"""Generative Concatenative Nets (GCN-U / GCN-I / GCN-P baselines of the MT paper, Tables 3-4).

Docs
----
Lipton, Vikram & McAuley (2015), "Generative Concatenative Nets Jointly Learn to Write and
Classify Reviews", condition a recurrent language model on auxiliary information by
concatenating it to the input at *every* time step, which keeps the condition in view over long
reviews. The MT paper (baseline (v)) "represents each user/item with a unique vector
representation ... fed into the network together with the word embedding of the input token".
Ours is the word-level LSTM of :mod:`xrec_core.models.lstm_lm` whose input at step ``t`` is
``[x_{t-1}; e_u]`` (GCN-U), ``[x_{t-1}; e_i]`` (GCN-I) or ``[x_{t-1}; e_u; e_i]`` (GCN-P), the
user / item vectors ``e`` being learned jointly with the network. Lipton et al. work on
characters with a 2 x 1024 LSTM; we keep the MT chapter's word-level tokenization (so the
perplexities of all baselines count the same tokens) and CPU-sized defaults (128-d words, 64-d
user/item vectors, one 256-unit layer).
"""

from __future__ import annotations

from ..search_space import Int, LogFloat
from .lstm_lm import LSTMLM
from .registry import GENERATION, register

CONDITIONS = ("user", "item", "both")


class GCN(LSTMLM):
    """LSTM LM with learned user / item vectors concatenated to every input (Lipton et al. 2015).

    Parameters
    ----------
    vocab : xrec_core.data.text.Vocabulary
        Shared vocabulary.
    condition : {"user", "item", "both"}
        GCN-U, GCN-I or GCN-P.
    cond_dim : int
        Size of each learned user / item vector.
    emb_dim, hidden_dim, n_layers, dropout, **train : as :class:`~xrec_core.models.lstm_lm.LSTMLM`.

    Notes
    -----
    ``fit``, ``perplexity`` and ``generate`` take integer ``users`` / ``items`` ids (one per
    review); ids must be below the largest id seen in ``fit`` + 1.
    """

    def __init__(self, vocab, condition: str = "both", cond_dim: int = 64, emb_dim: int = 128, hidden_dim: int = 256,
                 n_layers: int = 1, dropout: float = 0.2, **train) -> None:
        if condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {', '.join(CONDITIONS)}, got {condition!r}")
        super().__init__(vocab, emb_dim=emb_dim, hidden_dim=hidden_dim, n_layers=n_layers, dropout=dropout, **train)
        self.condition, self.cond_dim = condition, cond_dim
        self.uses_users = condition in ("user", "both")
        self.uses_items = condition in ("item", "both")


def _gcn(condition: str):
    def factory(vocab, **params) -> GCN:
        return GCN(vocab, condition=condition, **params)
    return factory


for _name, _condition in (("GCN-U", "user"), ("GCN-I", "item"), ("GCN-P", "both")):
    register(_name, role=GENERATION, search_space={"hidden_dim": Int(32, 512, log=True), "lr": LogFloat(1e-4, 1e-2)},
             source="Lipton, Vikram & McAuley 2015 (MT paper baseline v)")(_gcn(_condition))
