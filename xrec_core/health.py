"""Training-health checks: did a model learn anything before we judge a paper's claim with it?

A run whose rating model predicts worse than the global mean, whose ranker falls far below
MostPop or whose generator writes one sentence for every user has not been given a fair chance;
comparing it with the paper would confuse "our training failed" with "the claim fails". Each
check here compares a model with a trivial floor and says pass or fail with both numbers; the
run record stores them as its ``health`` list, the chapters and the scorecard show them, and
:mod:`xrec_core.claims` makes every claim naming a failed model *untestable*.

The floors (issue 14 of the book):

=======================  ==========================================================  =========
model role               check                                                        floor
=======================  ==========================================================  =========
rating predictor         test MSE (and RMSE) below the global mean's                  global mean
ranker                   main metric at least 0.9x MostPop's                          0.9 MostPop
explanation generator    unique-sentence ratio; share of empty outputs                0.01; 0
discriminator            accuracy on held-out data of its own task above chance       binomial p < 0.05
any trained model        training loss went down                                      first epoch
early-stopped model      fits ended by the epoch cap before patience ran out          0
                         (not converged)
tunable model            finished tuning trials, when any model of the record was     the most
                         tuned                                                        any had
=======================  ==========================================================  =========
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .metrics.text import distinct_sentences, unique_sentence_ratio

#: a ranker passes when its main metric is at least this fraction of MostPop's
RANKER_FLOOR_RATIO = 0.9
#: the name of the convergence check (:func:`converged_before_cap`), derived from a record's learning curves
CONVERGENCE_CHECK = "stopped improving before the epoch cap"
#: a generator passes when at least this fraction of its test outputs are distinct sentences
UNIQUE_SENTENCE_FLOOR = 0.01


@dataclass(frozen=True)
class HealthCheck:
    """One check of one model on one dataset: its value, the floor it is held to and the outcome."""

    model: str
    dataset: str
    check: str
    value: float
    floor: float
    passed: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def global_mean_check(metric: str = "MSE") -> str:
    """The name :func:`rating_below_global_mean` gives its check of ``metric`` (how reports find it in a record)."""
    return f"{metric} below global mean"


def rating_below_global_mean(model: str, dataset: str, mse: float, global_mean_mse: float,
                             metric: str = "MSE") -> HealthCheck:
    """A rating predictor must beat predicting the training mean for every pair (lower error)."""
    ok = math.isfinite(mse) and mse < global_mean_mse
    return HealthCheck(model, dataset, global_mean_check(metric), float(mse), float(global_mean_mse), bool(ok),
                       f"{metric} {mse:.4g} vs global mean {global_mean_mse:.4g}")


def mostpop_check(metric: str, ratio: float = RANKER_FLOOR_RATIO) -> str:
    """The name :func:`ranker_vs_mostpop` gives its check of ``metric`` (how reports find it in a record)."""
    return f"{metric} >= {ratio:g}x MostPop"


def ranker_vs_mostpop(model: str, dataset: str, value: float, mostpop: float, metric: str,
                      ratio: float = RANKER_FLOOR_RATIO) -> HealthCheck:
    """A ranker must reach ``ratio`` x MostPop on its main metric (an item bias alone learns popularity)."""
    floor = ratio * mostpop
    ok = math.isfinite(value) and value >= floor
    return HealthCheck(model, dataset, mostpop_check(metric, ratio), float(value), float(floor), bool(ok),
                       f"{metric} {value:.4g} vs MostPop {mostpop:.4g}")


def generator_diversity(model: str, dataset: str, texts: Sequence[str],
                        floor: float = UNIQUE_SENTENCE_FLOOR) -> list[HealthCheck]:
    """Two checks of a text generator's test outputs: enough distinct sentences, no empty ones.

    The ratio's floor is ``floor`` but at least two distinct sentences (``2 / len(texts)``), so that
    one sentence for every pair fails however few the pairs (on 65 test pairs one sentence is a
    ratio of 0.015, above 0.01).
    """
    sentences = [t.split() for t in texts]
    ratio = unique_sentence_ratio(sentences) if sentences else 0.0
    distinct = distinct_sentences(sentences)
    empty = sum(1 for s in sentences if not s)
    floor = max(floor, 2 / len(texts)) if len(texts) else floor
    return [
        HealthCheck(model, dataset, "unique-sentence ratio", ratio, floor, bool(ratio >= floor),
                    f"{distinct} distinct of {len(texts)}"),
        HealthCheck(model, dataset, "empty outputs", float(empty), 0.0, empty == 0, f"{empty} empty of {len(texts)}"),
    ]


def above_chance(model: str, dataset: str, correct: int, total: int, chance: float = 0.5,
                 alpha: float = 0.05, check: str = "held-out accuracy above chance") -> HealthCheck:
    """A classifier (a discriminator) must beat chance on held-out data of its own training task.

    One-sided exact binomial test of ``correct`` of ``total`` against ``chance``.
    """
    from scipy.stats import binomtest

    if total <= 0:
        return HealthCheck(model, dataset, check, float("nan"), chance, False, "no held-out examples")
    p = float(binomtest(int(correct), int(total), chance, alternative="greater").pvalue)
    acc = correct / total
    return HealthCheck(model, dataset, check, acc, chance, bool(p < alpha),
                       f"accuracy {acc:.3f} on {total} held-out examples, binomial p={p:.2g}")


def loss_decreased(model: str, dataset: str, losses: Sequence[float], min_drop: float = 0.0) -> HealthCheck:
    """Training loss must end below where it started (by more than ``min_drop`` relative)."""
    vals = [float(v) for v in losses if v is not None and math.isfinite(float(v))]
    if len(vals) < 2:
        return HealthCheck(model, dataset, "training loss went down", float("nan"), float("nan"), False,
                           f"{len(vals)} finite loss value(s): cannot tell")
    first, best = vals[0], min(vals[1:])
    floor = first - min_drop * abs(first)
    return HealthCheck(model, dataset, "training loss went down", best, floor, bool(best < floor),
                       f"first epoch {first:.4g}, best later {best:.4g}")


def curve_converged(curve: dict[str, Any]) -> bool:
    """The book's one definition of convergence, on a learning curve (``LearningCurve.as_dict()``).

    A fit with validation converged when its early stopping ended it: its validation metric went
    ``patience`` validations without a new best. A fit that ran to its epoch cap first did not, even
    when its best epoch came before the last: patience had not yet run out, so its own rule had not
    decided that it stopped improving (e.g. best at epoch 49 of 50 under patience 5). A curve without
    validation or without a cap cannot tell and counts as converged. Works on stored records too
    (only the fields below are read), so old and new records are judged alike.
    """
    epochs = int(curve.get("epochs", len(curve.get("train_loss", []))))
    cap = int(curve.get("max_epochs") or 0)
    return not (bool(curve.get("valid")) and not curve.get("stopped_early") and 0 < cap <= epochs)


def stopped_by_cap(curve: dict[str, Any]) -> bool:
    """Whether a fit's learning curve ended at its epoch cap before its early stopping did: the
    negation of :func:`curve_converged`."""
    return not curve_converged(curve)


class NotConverged(Exception):
    """Raised by an objective whose fit was stopped by its epoch cap before its patience ran out.

    The book counts a result only from a model that converged, so a trial's value counts only then
    too: :func:`xrec_core.tuning.tune` stores the trial as pruned (it counts in the budget, cannot be
    the best) with the message in its user attribute ``not_converged``. Without this, a study can prefer settings
    that stop early by the cap over ones that would have gone further (MT's first Gift_Cards study
    chose a learning rate at which its generator was still improving after 100 epochs).
    """


def require_converged(curves: Mapping[str, Mapping[str, Any]]) -> None:
    """Raise :class:`NotConverged` naming every learning curve (``LearningCurve.as_dict()`` by phase)
    that ended at its epoch cap before patience ran out (:func:`curve_converged`); tuning objectives call it
    through :func:`xrec_core.tuning.convergence_check`."""
    stopped = [f"{phase} ({curve.get('epochs')} of {curve.get('max_epochs')} epochs)"
               for phase, curve in curves.items() if stopped_by_cap(dict(curve))]
    if stopped:
        raise NotConverged("stopped by the epoch cap before patience ran out: " + ", ".join(stopped))


def curve_model(label: str) -> str:
    """The model a learning curve's label names: ``"MT: generator"`` and ``"CAR (base)"`` belong to MT and CAR."""
    return label.split(":")[0].split(" (")[0].strip()


def converged_before_cap(dataset: str, learning_curves: dict[str, dict[str, dict[str, Any]]]) -> list[HealthCheck]:
    """One check per model of a record's ``learning_curves`` (``{label: {unit: curve}}``): no fit ended
    by its epoch cap before patience ran out (:func:`stopped_by_cap`)."""
    capped: dict[str, list[str]] = {}
    for label, units in learning_curves.items():
        model = curve_model(label)
        phase = "" if label == model else f"{label} "  # "MT: generator fold1", but "seed 1" for the model's own curve
        capped.setdefault(model, []).extend(phase + unit for unit, curve in units.items() if stopped_by_cap(curve))
    return [HealthCheck(model, dataset, CONVERGENCE_CHECK, float(len(units)), 0.0, not units,
                        "stopped by the cap before patience ran out: " + ", ".join(units) if units else "every fit stopped improving")
            for model, units in capped.items()]


def tuning_budget(dataset: str, tuning: Mapping[str, Mapping[str, Any]], untuned: Iterable[str] = ()) -> list[HealthCheck]:
    """One check per tunable model of a record: it was tuned with the record's trial budget.

    The budget is the most finished trials (complete or pruned) any model of the record had; a model
    with fewer, or one that ran on the config's values (``untuned``) while others were tuned, did not
    get the chance its rivals got (untuned baselines are the first reason neural results do not
    reproduce, Dacrema et al. 2019), so the claims naming it are untestable. No check when no model
    of the record was tuned.
    """
    finished = {model: int(s.get("trials_complete", 0)) + int(s.get("trials_pruned", 0)) for model, s in tuning.items()}
    finished.update({model: 0 for model in untuned if model not in finished})
    budget = max(finished.values(), default=0)
    if budget == 0:
        return []
    return [HealthCheck(model, dataset, "tuned with the record's trial budget", float(n), float(budget), n >= budget,
                        f"{n} of {budget} trials" if n else f"not tuned (config values); the budget was {budget} trials")
            for model, n in finished.items()]


def unhealthy_models(checks: Iterable[HealthCheck | dict[str, Any]], dataset: str | None = None) -> set[str]:
    """Models that failed at least one check (on ``dataset``, when given)."""
    out = set()
    for c in checks:
        c = c.as_dict() if isinstance(c, HealthCheck) else c
        if (dataset is None or c["dataset"] == dataset) and not c["passed"]:
            out.add(c["model"])
    return out


def summarize(checks: Iterable[HealthCheck | dict[str, Any]]) -> dict[str, str]:
    """``{model: "ok" | "failed: <check>, ..."}``, the health column of the chapter tables and scorecard."""
    status: dict[str, list[str]] = {}
    for c in checks:
        c = c.as_dict() if isinstance(c, HealthCheck) else c
        status.setdefault(c["model"], [])
        if not c["passed"]:
            status[c["model"]].append(c["check"])
    return {m: "ok" if not failed else "failed: " + ", ".join(dict.fromkeys(failed)) for m, failed in status.items()}


def global_mean_mse(train_ratings: np.ndarray, test_ratings: np.ndarray) -> float:
    """MSE on the test ratings of predicting the training ratings' mean for every pair."""
    return float(np.mean((np.asarray(test_ratings, float) - float(np.mean(train_ratings))) ** 2))
