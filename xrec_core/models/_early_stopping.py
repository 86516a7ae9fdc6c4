"""Early stopping on a validation score, keeping the best weights (shared by the neural models)."""

from __future__ import annotations

import copy
import math

from torch import nn


class EarlyStopping:
    """Track a validation score, keep a copy of the best weights and say when to stop.

    Parameters
    ----------
    patience : int
        Evaluations without improvement before :meth:`step` returns ``True``.
    mode : {"min", "max"}
        Whether a lower (loss, RMSE, perplexity) or higher (recall) score is better.
    min_delta : float
        An improvement must exceed this margin to count.
    """

    def __init__(self, patience: int, mode: str = "min", min_delta: float = 0.0) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.patience, self.mode, self.min_delta = patience, mode, min_delta
        self.best = math.inf if mode == "min" else -math.inf
        self.best_state: dict | None = None
        self.bad = 0

    def _improves(self, score: float) -> bool:
        return score < self.best - self.min_delta if self.mode == "min" else score > self.best + self.min_delta

    def step(self, score: float, net: nn.Module) -> bool:
        """Record one evaluation; return ``True`` when training should stop."""
        if self._improves(score):
            self.best, self.best_state, self.bad = score, copy.deepcopy(net.state_dict()), 0
            return False
        self.bad += 1
        return self.bad >= self.patience

    @property
    def improved_once(self) -> bool:
        return self.best_state is not None

    def restore(self, net: nn.Module) -> None:
        """Load the best weights seen (no-op when no evaluation ever ran)."""
        if self.best_state is not None:
            net.load_state_dict(self.best_state)
