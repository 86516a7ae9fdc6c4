"""The model interface and the name -> factory registry every chapter builds its models from.

Three roles, one ``fit(train, valid)`` each (``valid`` is the validation split carved from the
training data, used for early stopping and tuning; never the test fold):

* :class:`RatingPredictor` -- ``predict(users, items) -> ratings``,
* :class:`Ranker` -- ``score(users, items) -> scores`` (``items`` a 2-D array of candidates per user,
  or ``None`` for every item),
* :class:`ExplanationGenerator` -- ``generate(users, items) -> list[str]``.

What ``train`` and ``valid`` hold is the chapter's data object (review sets, review tensors); the
shared baselines read :class:`~xrec_core.data.feedback.Ratings` (triples with optional item text)
or :class:`~xrec_core.data.feedback.Interactions` (a like matrix). A model documents what it reads. A model is registered once,
under the name the papers' tables use, with its role, the search space its tuning study explores
(:mod:`xrec_core.tuning`) and the paper it comes from::

    @register("PMF", role=RATING, search_space={"k": Int(8, 128, log=True), "reg": LogFloat(1e-4, 1.0)},
              source="Salakhutdinov & Mnih 2007")
    class PMF: ...

    model = build("PMF", k=32, reg=0.1)           # keyword arguments = the chapter config's values

A chapter's config dataclass holds every knob; the chapter builds a model with
``build(name, **params)`` where ``params`` come from that config (and from the tuned best
parameters), so no constructor carries a second set of defaults the config cannot reach.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

RATING = "rating predictor"
RANKING = "ranker"
GENERATION = "explanation generator"
ROLES = (RATING, RANKING, GENERATION)


@runtime_checkable
class RatingPredictor(Protocol):
    """Predicts a rating for (user, item) pairs."""

    def fit(self, train: Any, valid: Any | None = None) -> "RatingPredictor": ...

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class Ranker(Protocol):
    """Scores items for users (higher = recommended first)."""

    def fit(self, train: Any, valid: Any | None = None) -> "Ranker": ...

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray: ...


@runtime_checkable
class ExplanationGenerator(Protocol):
    """Writes an explanation (a review-like sentence) for (user, item) pairs."""

    def fit(self, train: Any, valid: Any | None = None) -> "ExplanationGenerator": ...

    def generate(self, users: np.ndarray, items: np.ndarray) -> list[str]: ...


_PROTOCOLS = {RATING: RatingPredictor, RANKING: Ranker, GENERATION: ExplanationGenerator}


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: how to build it, what it does, what its tuning explores."""

    name: str
    role: str
    factory: Callable[..., Any]
    search_space: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def build(self, **params: Any) -> Any:
        return self.factory(**params)


REGISTRY: dict[str, ModelEntry] = {}

#: modules whose import registers the book's models (imported on first lookup); one line per module
MODEL_MODULES: tuple[str, ...] = (
    "xrec_core.models.rating_baselines",
    "xrec_core.models.ranking_baselines",
    "xrec_core.models.ncf",
    "xrec_core.models.ctr",
    "xrec_core.models.hft",
    "xrec_core.models.convmf",
    "xrec_core.models.semax",
    "xrec_core.models.mt",
    "xrec_core.models.ngram_lm",
    "xrec_core.models.skipgram_lm",
    "xrec_core.models.lstm_lm",
    "xrec_core.models.gcn",
    "xrec_core.models.opinosis",
    "xrec_core.models.nar.models",
    "xrec_core.models.gru",
    "xrec_core.models.explain",
    "xrec_core.models.mvae",
)


class UnknownModelError(KeyError):
    """A model name that is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; keep the one line readable
        return str(self.args[0])


def register(name: str, *, role: str, search_space: Mapping[str, Any] | None = None,
             source: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Class or factory decorator adding ``name`` to :data:`REGISTRY` (a second registration of a name is an error)."""
    if role not in ROLES:
        raise ValueError(f"Unknown role {role!r}; valid: {', '.join(ROLES)}")

    def decorate(factory: Callable[..., Any]) -> Callable[..., Any]:
        existing = REGISTRY.get(name)
        if existing is not None and existing.factory is not factory:
            raise ValueError(f"Model {name!r} is registered twice ({existing.factory.__module__} and {factory.__module__})")
        REGISTRY[name] = ModelEntry(name, role, factory, dict(search_space or {}), source)
        return factory

    return decorate


def _load_all() -> None:
    for module in MODEL_MODULES:
        importlib.import_module(module)


def entry(name: str) -> ModelEntry:
    """The registry entry of ``name`` (one-line error listing the registered names otherwise)."""
    if name not in REGISTRY:
        _load_all()
    if name not in REGISTRY:
        raise UnknownModelError(f"Unknown model {name!r}; registered: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def build(name: str, **params: Any) -> Any:
    """Build the model registered as ``name`` with ``params`` (the chapter config's values)."""
    return entry(name).build(**params)


def names(role: str | None = None) -> list[str]:
    """Registered model names (of one role)."""
    _load_all()
    return sorted(n for n, e in REGISTRY.items() if role is None or e.role == role)


def implements(model: Any, role: str) -> bool:
    """Whether ``model`` has the methods of ``role``'s protocol."""
    return isinstance(model, _PROTOCOLS[role])


def missing_models(wanted: Sequence[str]) -> list[str]:
    """The names in ``wanted`` that no registered model answers to."""
    _load_all()
    return [n for n in wanted if n not in REGISTRY]
