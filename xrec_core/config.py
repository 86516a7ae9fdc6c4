"""Experiment configs: one dataclass per paper with the paper's defaults and named scales.

Each paper's config subclasses :class:`ExperimentConfig`, sets its fields' defaults to the
paper's values (``scale="paper"``) and lists the overrides of its other scales in
``SCALES``. ``from_scale`` builds a config and rejects unknown names with a one-line error
that lists the valid ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="ExperimentConfig")


class ConfigError(ValueError):
    """A wrong scale, dataset or parameter name/value."""


@dataclass
class ExperimentConfig:
    """Fields every chapter shares."""

    dataset: str = ""
    scale: str = "paper"
    seed: int = 2024
    device: str = "auto"
    n_threads: int = 0
    data_dir: str = ""
    results_dir: str = ""
    #: trials of each model's hyperparameter study (:func:`xrec_core.tuning.tune`); the paper's
    #: models and the baselines get the same budget. A chapter's ``SCALES`` size it per scale.
    tune_trials: int = 50

    #: ``{scale: {field: value}}`` applied on top of the paper defaults.
    SCALES: ClassVar[dict[str, dict[str, Any]]] = {"paper": {}}
    #: datasets this paper's notebook accepts (registry names, see :mod:`xrec_core.data.registry`).
    DATASETS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_scale(cls: type[T], scale: str = "paper", **overrides: Any) -> T:
        """Paper defaults, then the scale's overrides, then ``overrides``; all names checked."""
        if scale not in cls.SCALES:
            raise ConfigError(f"Unknown scale {scale!r} for {cls.__name__}; valid: {', '.join(cls.SCALES)}")
        names = set(cls.field_names())
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ConfigError(f"Unknown parameter(s) {', '.join(unknown)} for {cls.__name__}; valid: {', '.join(sorted(names))}")
        values = {**cls.SCALES[scale], **{k: v for k, v in overrides.items() if v is not None}}
        values["scale"] = scale
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Check values; subclasses extend it (call ``super().validate()``)."""
        if self.DATASETS and self.dataset not in self.DATASETS:
            raise ConfigError(f"Unknown dataset {self.dataset!r} for {type(self).__name__}; valid: {', '.join(self.DATASETS)}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
