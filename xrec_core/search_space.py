"""Search-space dimensions declared beside each model and explored by its tuning study.

A model's registry entry (:mod:`xrec_core.models.registry`) carries ``{parameter: dimension}``;
:func:`suggest` asks an Optuna trial for one value of each (:mod:`xrec_core.tuning` runs the
studies). Ranges follow the papers' and the public baselines' own grids where they give one,
widened by about a decade on each side. Optuna is only imported by the functions that use it, so a
model module declares its space without paying for that import.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class LogFloat:
    """A float searched on a log scale in ``[low, high]`` (learning rates, regularization)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0 < self.low < self.high:
            raise ValueError(f"LogFloat needs 0 < low < high, got {self.low}, {self.high}")

    def suggest(self, trial: "optuna.Trial", name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=True)


@dataclass(frozen=True)
class Float:
    """A float searched uniformly in ``[low, high]`` (dropout, loss weights)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ValueError(f"Float needs low < high, got {self.low}, {self.high}")

    def suggest(self, trial: "optuna.Trial", name: str) -> float:
        return trial.suggest_float(name, self.low, self.high)


@dataclass(frozen=True)
class Int:
    """An integer in ``[low, high]``, on a log scale when ``log`` (embedding and hidden sizes)."""

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low < self.high or (self.log and self.low < 1):
            raise ValueError(f"Int needs low < high (and low >= 1 when log), got {self.low}, {self.high}")

    def suggest(self, trial: "optuna.Trial", name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Categorical:
    """One of ``choices`` (a loss, an optimizer); choices are None, bool, int, float or str."""

    choices: tuple[Any, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(self.choices))
        if not self.choices:
            raise ValueError("Categorical needs at least one choice")

    def suggest(self, trial: "optuna.Trial", name: str) -> Any:
        return trial.suggest_categorical(name, self.choices)


Dimension = Union[LogFloat, Float, Int, Categorical]
SearchSpace = Mapping[str, Dimension]


def suggest(trial: "optuna.Trial", space: SearchSpace) -> dict[str, Any]:
    """One value per dimension of ``space``, drawn by ``trial``: ``{name: value}``."""
    return {name: dim.suggest(trial, name) for name, dim in space.items()}


def describe_space(space: SearchSpace) -> dict[str, dict[str, Any]]:
    """``space`` as JSON: ``{name: {"type": "LogFloat", "low": ..., "high": ...}}``."""
    return {name: {"type": type(dim).__name__, **dataclasses.asdict(dim)} for name, dim in space.items()}
