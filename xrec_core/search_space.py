"""Search-space dimensions declared beside each model and explored by its tuning study.

A model's registry entry (:mod:`xrec_core.models.registry`) carries ``{parameter: dimension}``;
:func:`suggest` asks an Optuna trial for one value of each. Ranges follow the papers' and the
public baselines' own grids where they give one, widened by about a decade on each side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union


@dataclass(frozen=True)
class LogFloat:
    """A positive float searched on a log scale (learning rates, regularization weights)."""

    low: float
    high: float


@dataclass(frozen=True)
class Float:
    """A float searched uniformly (dropout, mixing weights)."""

    low: float
    high: float


@dataclass(frozen=True)
class Int:
    """An integer (sizes), optionally on a log scale."""

    low: int
    high: int
    log: bool = False


@dataclass(frozen=True)
class Categorical:
    """One of a few choices."""

    choices: Sequence[Any]


Dimension = Union[LogFloat, Float, Int, Categorical]
SearchSpace = Mapping[str, Dimension]


def suggest(trial: Any, space: SearchSpace) -> dict[str, Any]:
    """One value per dimension from an Optuna ``trial``."""
    params: dict[str, Any] = {}
    for name, dim in space.items():
        if isinstance(dim, LogFloat):
            params[name] = trial.suggest_float(name, dim.low, dim.high, log=True)
        elif isinstance(dim, Float):
            params[name] = trial.suggest_float(name, dim.low, dim.high)
        elif isinstance(dim, Int):
            params[name] = trial.suggest_int(name, dim.low, dim.high, log=dim.log)
        elif isinstance(dim, Categorical):
            params[name] = trial.suggest_categorical(name, list(dim.choices))
        else:
            raise TypeError(f"Unknown search dimension for {name!r}: {dim!r}")
    return params
