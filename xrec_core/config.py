"""Experiment configs: one dataclass per paper with the paper's defaults and named scales.

Each paper's config subclasses :class:`ExperimentConfig`, sets its fields' defaults to the
paper's values (``scale="paper"``) and lists the overrides of its other scales in
``SCALES``. ``from_scale`` builds a config and rejects unknown names with a one-line error
that lists the valid ones.

Which datasets a chapter reads follows from what they hold: a chapter declares the fields it
needs in ``REQUIRES`` (``rating``, ``text``, ``time``, ``tags``, ``item_text``, ``tuples``; ``"a|b"``
for either), and ``validate`` names the field a dataset lacks. ``dataset`` may be a registry name,
an Amazon file added to the data layout or a path to a review file (see :mod:`xrec_core.data.sources`);
``from_scale`` stores its canonical name (never an absolute path).
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
    #: a tuning trial whose fit its epoch cap ended before patience ran out is pruned (counts in the budget,
    #: never the best; :func:`xrec_core.health.require_converged`); off at ``smoke`` scale
    #: (:attr:`SHARED_SCALES`), whose few epochs never converge
    tune_converged_only: bool = True

    #: ``{scale: {field: value}}`` applied on top of the paper defaults.
    SCALES: ClassVar[dict[str, dict[str, Any]]] = {"paper": {}}
    #: overrides every chapter's scale of that name starts from (its ``SCALES`` entry applies on top).
    SHARED_SCALES: ClassVar[dict[str, dict[str, Any]]] = {"smoke": {"tune_converged_only": False}}
    #: fields a dataset must hold for this chapter (``"a|b"``: either); see :mod:`xrec_core.data.sources`.
    REQUIRES: ClassVar[tuple[str, ...]] = ()

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
        values = {**cls.SHARED_SCALES.get(scale, {}), **cls.SCALES[scale],
                  **{k: v for k, v in overrides.items() if v is not None}}
        values["scale"] = scale
        cfg = cls(**values)
        cfg.dataset = check_dataset(cls, cfg.dataset, cfg.data_dir or None)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Check values; subclasses extend it (call ``super().validate()``)."""
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_dataset(cfg_cls: type[ExperimentConfig], dataset: str, data_dir: str | None = None) -> str:
    """The canonical name of ``dataset`` after checking that it holds the fields ``cfg_cls.REQUIRES``
    (returned unchanged by a config that requires nothing).

    A registry dataset is checked without reading data. Anything else (an Amazon file added to the
    layout, a path, a review table) is resolved in the data folder, so that an unknown name, format
    or column map fails here with its one-line error; without a data folder configured, that check
    is left to the loading of the data.

    Raises
    ------
    ConfigError
        naming the field(s) the dataset lacks, or why it cannot be used.
    """
    from .data.sources import datasets_with, describe_fields, fields_of, missing_fields, resolve
    from .paths import DataRootNotSet

    if not cfg_cls.REQUIRES:
        return dataset
    fields, name = fields_of(dataset), dataset
    if fields is None or "#" in dataset:
        try:
            source = resolve(dataset, data_dir)
        except DataRootNotSet:
            return dataset
        fields, name = source.fields, source.name
    lacking = missing_fields(fields, cfg_cls.REQUIRES)
    if lacking:
        raise ConfigError(f"{cfg_cls.__name__} needs {describe_fields(lacking)}, which dataset {name!r} lacks (it holds "
                          f"{', '.join(fields) or 'no such field'}); registry datasets with them: "
                          f"{', '.join(datasets_with(cfg_cls.REQUIRES))}")
    return name
