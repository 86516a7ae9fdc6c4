"""The claims module: verdicts, paired tests, trends and the published-number rule, against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from xrec_core.claims import (FAILS, HOLDS, NOT_REPRODUCED, PARTLY, REPRODUCED, UNTESTABLE, better_than,
                              paired_p_value, published_number_verdict, t_interval, trend, unit_values)
from xrec_core.experiments.common import ClaimJudge
from xrec_core.health import HealthCheck
from xrec_core.records import MetricRow, RunRecorder


def _manual_paired_p(a, b) -> float:
    d = np.asarray(a, float) - np.asarray(b, float)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    return float(2 * stats.t.sf(abs(t), len(d) - 1))


def test_paired_p_matches_the_t_formula():
    a, b = [0.91, 0.85, 0.88, 0.93], [0.80, 0.83, 0.79, 0.86]
    assert paired_p_value(a, b) == pytest.approx(_manual_paired_p(a, b), rel=1e-10)


def test_clear_win_holds_and_reports_the_p_value():
    v = better_than({"A": [0.9, 0.8, 0.85], "B": [0.7, 0.62, 0.66]}, "A", "B", higher_is_better=True)
    assert v.verdict == HOLDS and v.holds is True
    assert v.p_values["B"] == pytest.approx(_manual_paired_p([0.9, 0.8, 0.85], [0.7, 0.62, 0.66]))
    assert "3 folds" in v.evidence


def test_lower_is_better_direction():
    mse = {"MT": [0.80, 0.82, 0.79, 0.81], "PMF": [0.95, 0.99, 0.97, 0.96]}
    assert better_than(mse, "MT", "PMF", higher_is_better=False).verdict == HOLDS
    v = better_than(mse, "PMF", "MT", higher_is_better=False)
    assert v.verdict == FAILS and "reversed" in v.evidence


def test_one_unit_is_untestable_never_a_win():
    v = better_than({"A": [0.9], "B": [0.1]}, "A", "B", higher_is_better=True)
    assert v.verdict == UNTESTABLE and v.holds is None


@pytest.mark.parametrize("values", [{"A": [1.0, 2.0]}, {"A": [1.0, 2.0], "B": None}, {"A": [1.0, 2.0], "B": []}])
def test_missing_or_crashed_comparator_is_untestable(values):
    v = better_than(values, "A", ["B"], higher_is_better=True)
    assert v.verdict == UNTESTABLE and "B" in v.evidence


def test_unhealthy_model_makes_the_claim_untestable():
    v = better_than({"A": [3.0, 3.1, 3.2], "B": [1.0, 1.1, 1.0]}, "A", "B", higher_is_better=True, unhealthy={"B"})
    assert v.verdict == UNTESTABLE and "health" in v.evidence


def test_beating_all_needs_every_pair_significant():
    values = {"A": [0.9, 0.8, 0.85, 0.87], "B": [0.7, 0.6, 0.66, 0.65], "C": [0.91, 0.78, 0.86, 0.85]}
    v = better_than(values, "A", ["B", "C"], higher_is_better=True)
    assert v.verdict == FAILS and "not significant" in v.evidence
    assert v.p_values["C"] > 0.05 > v.p_values["B"]


def test_identical_values_are_no_evidence():
    v = better_than({"A": [0.5, 0.6], "B": [0.5, 0.6]}, "A", "B", higher_is_better=True)
    assert v.verdict == FAILS and v.p_values["B"] == 1.0


def test_trend_slope_equals_least_squares_and_is_tested():
    rng = np.random.default_rng(0)
    x = np.array([1.0, 2.0, 3.0, 4.0])
    units = [2.0 * x + 1 + rng.normal(0, 0.1, 4) for _ in range(4)]
    v = trend(x, units, increasing=True)
    slopes = [np.polyfit(x, u, 1)[0] for u in units]
    assert v.verdict == HOLDS
    assert f"{np.mean(slopes):.3g}" in v.evidence
    assert v.p_values["slope"] == pytest.approx(float(stats.ttest_1samp(slopes, 0.0).pvalue))
    assert trend(x, units, increasing=False).verdict == FAILS


def test_trend_needs_two_units_and_healthy_models():
    assert trend([1, 2, 3], [[1, 2, 3]], increasing=True).verdict == UNTESTABLE
    assert trend([1, 2, 3], [[1, 2, 3], [1, 2, 4]], increasing=True, models=["M"], present=[]).verdict == UNTESTABLE
    assert trend([1, 2, 3], [[1, 2, 3], [1, 2, 4]], increasing=True, models=["M"], unhealthy={"M"}).verdict == UNTESTABLE


def test_t_interval_matches_formula():
    vals = [0.81, 0.79, 0.84, 0.80, 0.83]
    iv = t_interval(vals)
    half = stats.t.ppf(0.975, 4) * np.std(vals, ddof=1) / math.sqrt(5)
    assert iv.low == pytest.approx(np.mean(vals) - half) and iv.high == pytest.approx(np.mean(vals) + half)
    assert t_interval([0.8]) is None


def test_published_number_rule():
    vals = [0.81, 0.79, 0.84, 0.80, 0.83]
    iv95, iv999 = t_interval(vals), t_interval(vals, 0.999)
    assert published_number_verdict(vals, float(np.mean(vals)))[0] == REPRODUCED
    between = (iv95.high + iv999.high) / 2
    assert published_number_verdict(vals, between)[0] == PARTLY
    assert published_number_verdict(vals, iv999.high + 0.01)[0] == NOT_REPRODUCED
    assert published_number_verdict([0.8], 0.9)[0] == NOT_REPRODUCED


def test_judge_records_claims_with_health(tmp_path):
    rec = RunRecorder("mt", config={"a": 1}, scale="smoke", dataset="d", seed=0, results_dir=tmp_path)
    rec.add_health([HealthCheck("PMF", "d", "MSE below global mean", 1.2, 0.8, False)])
    rec.add_metric(MetricRow.from_values("T2", "d", "MT", "MSE", [0.7, 0.71, 0.69]))
    rec.add_metric(MetricRow.from_values("T2", "d", "PMF", "MSE", [0.9, 0.95, 0.93]))
    rec.add_metric(MetricRow.from_values("T2", "d", "HFT", "MSE", [0.9, 0.95, 0.93]))
    judge = ClaimJudge(rec, unit="fold")
    values = unit_values(rec.metrics, "MSE")
    assert judge.better("MT beats PMF", "Table 2", values, "MT", "PMF", higher_is_better=False).verdict == UNTESTABLE
    assert judge.better("MT beats HFT", "Table 2", values, "MT", "HFT", higher_is_better=False).verdict == HOLDS
    d = rec.as_dict()
    assert [c["verdict"] for c in d["claims"]] == [UNTESTABLE, HOLDS]
    assert d["claims"][0]["holds"] is None and d["claims"][0]["models"] == ["MT", "PMF"]
    assert d["health"][0]["passed"] is False
