"""Grid search helpers shared by the baseline tuners."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple


class Tuned(NamedTuple):
    """Result of a grid search: the refitted best model, its parameters and every (params, score)."""

    model: Any
    params: dict[str, Any]
    history: list[tuple[dict[str, Any], float]]


def expand_grid(grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``{"k": [8, 16], "reg": [0.1]}`` -> list of settings; a list of dicts is returned as is."""
    if isinstance(grid, Mapping):
        keys = list(grid)
        return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    return [dict(g) for g in grid]
