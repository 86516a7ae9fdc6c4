"""Deciding a paper's claims from per-unit values: *holds*, *fails* or *untestable*.

Every chapter states the claims of its paper ("MT beats PMF, HFT, CTR and ConvMF+ on MSE",
"performance rises with the number of scales") as calls into this module, and every claim is
decided by the same rules:

* The evidence is a value **per unit** (fold, split or seed) for each model the claim names,
  paired over the same units. Means alone never decide.
* **untestable** when fewer than two paired units exist, when a model the claim names is missing
  (not run, crashed) or failed its training-health check (:mod:`xrec_core.health`): a claim
  judged on an untrained model is not a finding either way.
* A comparison "A is better than B" **holds** when the mean difference points the claimed way and
  a two-sided paired t-test (``scipy.stats.ttest_rel``) gives ``p < alpha``; otherwise it
  **fails** (the evidence says whether the difference was reversed or only not significant).
  "A beats all of B1..Bk" holds when every pair does: an intersection-union test, valid at level
  ``alpha`` without a multiplicity correction (Berger 1982).
* A **trend** ("BLEU rises with the number of scales") is the per-unit least-squares slope of the
  metric on the setting, tested with a one-sample t-test of the slopes against zero.

The published-number rule of the scorecard lives here as well (:func:`published_number_verdict`):
the paper's value is *reproduced* when it lies inside the 95% t-interval of our mean over units.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any
from dataclasses import dataclass, field

import numpy as np

HOLDS = "holds"
FAILS = "fails"
UNTESTABLE = "untestable"
VERDICTS = (HOLDS, FAILS, UNTESTABLE)

#: values per model, one per unit in the same unit order for every model; ``None`` = model missing
UnitValues = Mapping[str, Sequence[float] | None]


@dataclass(frozen=True)
class Verdict:
    """The outcome of one test: the verdict, a readable evidence line and the p-values behind it."""

    verdict: str
    evidence: str
    p_values: dict[str, float] = field(default_factory=dict)

    @property
    def holds(self) -> bool | None:
        """``True`` / ``False`` for a tested claim, ``None`` when it was untestable."""
        return None if self.verdict == UNTESTABLE else self.verdict == HOLDS


def _model_reason(models: Sequence[str], present: Collection[str], unhealthy: Collection[str]) -> str | None:
    """Why a claim about ``models`` cannot be judged: one did not finish, or one failed its health check."""
    missing = [m for m in models if m not in set(present)]
    if missing:
        return f"not run or crashed: {', '.join(missing)}"
    sick = [m for m in models if m in set(unhealthy)]
    if sick:
        return f"failed its training-health check: {', '.join(sick)}"
    return None


def _untestable_reason(values: UnitValues, models: Sequence[str], unhealthy: Collection[str], unit: str) -> str | None:
    reason = _model_reason(models, [m for m in models if values.get(m) is not None and len(values[m])], unhealthy)
    if reason:
        return reason
    sizes = {m: len(values[m]) for m in models}
    if len(set(sizes.values())) > 1:
        return "unequal numbers of units: " + ", ".join(f"{m} {n}" for m, n in sizes.items())
    n = next(iter(sizes.values()))
    if n < 2:
        return f"{n} {unit}: no test is possible with fewer than two"
    bad = [m for m in models if not np.all(np.isfinite(np.asarray(values[m], dtype=float)))]
    if bad:
        return f"non-finite values: {', '.join(bad)}"
    return None


def paired_p_value(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided paired t-test p-value of ``a`` against ``b`` (1.0 when every difference is equal).

    ``scipy.stats.ttest_rel`` returns NaN when all differences are identical (zero variance); a
    constant non-zero difference is then treated as decisive (p = 0) and identical values as no
    evidence (p = 1).
    """
    from scipy.stats import ttest_rel

    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if np.allclose(diff, diff[0], rtol=0.0, atol=1e-15):
        return 1.0 if abs(diff[0]) <= 1e-15 else 0.0
    return float(ttest_rel(a, b).pvalue)


def better_than(values: UnitValues, winner: str, losers: Sequence[str] | str, *, higher_is_better: bool,
                alpha: float = 0.05, unit: str = "fold", unhealthy: Collection[str] = ()) -> Verdict:
    """Does ``winner`` beat every model in ``losers`` over the same units?

    Parameters
    ----------
    values : mapping
        ``{model: [value per unit]}``; a model that did not run (or crashed) is absent or ``None``.
    winner, losers : str
        The model claimed better and the models it is claimed to beat.
    higher_is_better : bool
        Direction of the metric (``False`` for MSE, RMSE, perplexity).
    alpha : float
        Level of each paired t-test.
    unit : str
        What the values are paired over, for the evidence ("fold", "split", "seed").
    unhealthy : collection of str
        Models that failed a training-health check: a claim naming one is untestable.

    Examples
    --------
    >>> better_than({"A": [0.9, 0.8, 0.85], "B": [0.7, 0.6, 0.66]}, "A", "B", higher_is_better=True).verdict
    'holds'
    >>> better_than({"A": [0.9], "B": [0.7]}, "A", "B", higher_is_better=True).verdict
    'untestable'
    """
    losers = [losers] if isinstance(losers, str) else list(losers)
    models = [winner, *losers]
    reason = _untestable_reason(values, models, unhealthy, unit)
    if reason:
        return Verdict(UNTESTABLE, reason)
    sign = 1.0 if higher_is_better else -1.0
    a = np.asarray(values[winner], dtype=float)
    n = len(a)
    parts, p_values, all_hold = [], {}, True
    for loser in losers:
        b = np.asarray(values[loser], dtype=float)
        p = paired_p_value(a, b)
        p_values[loser] = p
        gain = sign * float(a.mean() - b.mean())
        ok = gain > 0 and p < alpha
        all_hold &= ok
        why = "" if ok else (" reversed" if gain < 0 else (" tie" if gain == 0 else " not significant"))
        parts.append(f"{winner} {a.mean():.4g} vs {loser} {b.mean():.4g} (p={p:.2g}{why})")
    evidence = f"{n} {unit}s, paired t-test: " + "; ".join(parts)
    return Verdict(HOLDS if all_hold else FAILS, evidence, p_values)


def trend(settings: Sequence[float], values_per_unit: Sequence[Sequence[float]], *, increasing: bool,
          alpha: float = 0.05, unit: str = "fold", log_x: bool = False, models: Sequence[str] = (),
          present: Collection[str] | None = None, unhealthy: Collection[str] = ()) -> Verdict:
    """Does the metric rise (or fall) with a setting, consistently over units?

    Each unit's values over ``settings`` get a least-squares slope; the slopes are tested against
    zero with a one-sample t-test (two-sided). The trend holds when the mean slope has the claimed
    sign and ``p < alpha``.

    Parameters
    ----------
    settings : sequence of float
        The x values (number of scales, beta, ...), the same for every unit.
    values_per_unit : sequence of sequences
        ``values_per_unit[u][j]`` = metric of unit ``u`` at ``settings[j]``.
    increasing : bool
        The claimed direction.
    log_x : bool
        Regress on ``log10(settings)`` (for settings spread over decades, such as beta).
    models, present, unhealthy :
        The models the trend is computed from, the models that finished (``None``: all did) and
        those that failed a training-health check; a missing or unhealthy one makes it untestable.
    """
    reason = _model_reason(models, models if present is None else present, unhealthy)
    if reason:
        return Verdict(UNTESTABLE, reason)
    x = np.asarray(settings, dtype=float)
    if log_x:
        x = np.log10(x)
    if len(x) < 2 or len(np.unique(x)) < 2:
        return Verdict(UNTESTABLE, "fewer than two distinct settings")
    rows = [np.asarray(v, dtype=float) for v in values_per_unit]
    if len(rows) < 2:
        return Verdict(UNTESTABLE, f"{len(rows)} {unit}: no test is possible with fewer than two")
    if any(r.shape != x.shape or not np.all(np.isfinite(r)) for r in rows):
        return Verdict(UNTESTABLE, "a unit lacks a finite value at some setting")
    xc = x - x.mean()
    slopes = np.array([float(xc @ (r - r.mean()) / (xc @ xc)) for r in rows])
    mean_slope = float(slopes.mean())
    if np.allclose(slopes, slopes[0], rtol=0.0, atol=1e-15):
        p = 1.0 if abs(slopes[0]) <= 1e-15 else 0.0
    else:
        from scipy.stats import ttest_1samp

        p = float(ttest_1samp(slopes, 0.0).pvalue)
    ok = (mean_slope > 0 if increasing else mean_slope < 0) and p < alpha
    per = "log10 " if log_x else ""
    evidence = (f"{len(rows)} {unit}s, slope per {per}unit {mean_slope:.3g} (sd {slopes.std(ddof=1):.2g}), "
                f"one-sample t-test p={p:.2g}; claimed {'rising' if increasing else 'falling'}")
    return Verdict(HOLDS if ok else FAILS, evidence, {"slope": p})


# --------------------------------------------------------------------------- published numbers
REPRODUCED = "reproduced"
PARTLY = "partly"
NOT_REPRODUCED = "not reproduced"


@dataclass(frozen=True)
class Interval:
    """A two-sided t-interval of a mean over units."""

    low: float
    high: float
    level: float

    def __str__(self) -> str:
        return f"[{self.low:.4g}, {self.high:.4g}]"


def t_interval(values: Sequence[float], level: float = 0.95) -> Interval | None:
    """The ``level`` t-interval of the mean of ``values``; ``None`` with fewer than two values."""
    from scipy.stats import t

    arr = np.asarray(values, dtype=float)
    if arr.size < 2 or not np.all(np.isfinite(arr)):
        return None
    half = float(t.ppf(0.5 + level / 2, arr.size - 1) * arr.std(ddof=1) / math.sqrt(arr.size))
    return Interval(float(arr.mean()) - half, float(arr.mean()) + half, level)


def published_number_verdict(values: Sequence[float], paper_value: float, *, level: float = 0.95,
                             partly_level: float = 0.999) -> tuple[str, Interval | None]:
    """Is a published number reproduced by our per-unit values?

    *reproduced* when the paper's value lies inside the ``level`` (95%) t-interval of our mean over
    units; *partly* when it lies outside that but inside the ``partly_level`` (99.9%) interval;
    *not reproduced* otherwise. With fewer than two units no interval exists and the verdict is
    *not reproduced* unless the single value equals the paper's to the paper's printed precision
    (four significant digits).
    """
    inner = t_interval(values, level)
    if inner is None:
        same = len(values) == 1 and math.isclose(float(values[0]), paper_value, rel_tol=5e-4)
        return (REPRODUCED if same else NOT_REPRODUCED), None
    if inner.low <= paper_value <= inner.high:
        return REPRODUCED, inner
    outer = t_interval(values, partly_level)
    assert outer is not None
    return (PARTLY if outer.low <= paper_value <= outer.high else NOT_REPRODUCED), inner


def unit_values(metric_rows: Sequence[Any], metric: str, *, table: str | None = None,
                dataset: str | None = None) -> dict[str, list[float]]:
    """``{model: per-unit values}`` of one metric from a record's metric rows (dicts or ``MetricRow``)."""
    out: dict[str, list[float]] = {}
    for row in metric_rows:
        row = row if isinstance(row, Mapping) else vars(row)
        if row["metric"] == metric and (table is None or row["table"] == table) and (dataset is None or row["dataset"] == dataset):
            out[row["model"]] = [float(v) for v in (row.get("values") or [row["value"]])]
    return out
