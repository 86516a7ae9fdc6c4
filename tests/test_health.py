"""Training-health checks against their floors, computed independently."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from xrec_core import health
from xrec_core.health import (above_chance, generator_diversity, global_mean_mse, loss_decreased, ranker_vs_mostpop,
                              rating_below_global_mean, summarize, unhealthy_models)


def test_global_mean_floor():
    train, test = np.array([1.0, 5.0, 3.0]), np.array([4.0, 2.0])
    assert global_mean_mse(train, test) == pytest.approx(((4 - 3) ** 2 + (2 - 3) ** 2) / 2)
    assert rating_below_global_mean("MF", "d", 0.9, 1.0).passed
    bad = rating_below_global_mean("PMF", "d", 1.465, 0.800)
    assert not bad.passed and bad.floor == 0.8


def test_ranker_needs_nine_tenths_of_mostpop():
    assert ranker_vs_mostpop("NAR", "d", 0.091, 0.1, "NDCG").passed
    assert not ranker_vs_mostpop("NAR", "d", 0.089, 0.1, "NDCG").passed


def test_one_sentence_for_every_pair_fails():
    texts = ["this is a great"] * 680
    ratio, empty = generator_diversity("MVAE", "d", texts)
    assert ratio.value == pytest.approx(1 / 680) and not ratio.passed and empty.passed
    assert generator_diversity("NRT", "d", ["a", "b", "a ", ""])[0].value == pytest.approx(3 / 4)  # "a " is "a"
    assert not generator_diversity("Att2Seq", "d", ["", "x"])[1].passed


def test_one_sentence_fails_on_few_pairs_and_two_pass():
    one = generator_diversity("Att2Seq", "d", ["gift gift"] * 65)[0]
    assert one.value == pytest.approx(1 / 65) and one.value > 0.01 and one.floor == pytest.approx(2 / 65) and not one.passed
    assert generator_diversity("Att2Seq", "d", ["gift gift"] * 64 + ["gift"])[0].passed
    assert generator_diversity("MVAE", "d", [f"s{i % 7}" for i in range(700)])[0].floor == 0.01


def test_above_chance_is_an_exact_binomial_test():
    check = above_chance("D", "d", 60, 100)
    p = sum(stats.binom.pmf(k, 100, 0.5) for k in range(60, 101))
    assert check.passed == (p < 0.05) and f"{p:.2g}" in check.detail
    assert not above_chance("D", "d", 41, 100).passed


def test_loss_must_go_down():
    assert loss_decreased("M", "d", [2.0, 1.5, 1.2]).passed
    assert not loss_decreased("M", "d", [2.0, 2.1, 2.3]).passed
    assert not loss_decreased("M", "d", [2.0]).passed


def test_unhealthy_and_summary():
    checks = [rating_below_global_mean("A", "d", 0.5, 1.0), rating_below_global_mean("B", "d", 2.0, 1.0),
              rating_below_global_mean("B", "e", 0.5, 1.0)]
    assert unhealthy_models(checks) == {"B"} and unhealthy_models(checks, "e") == set()
    assert summarize(checks) == {"A": "ok", "B": "failed: MSE below global mean"}


def _curve(valid, max_epochs, mode="min", patience=2):
    """A learning curve as the Trainer writes it: early stopping with ``patience`` under ``max_epochs``."""
    from xrec_core.training import LearningCurve

    sign = 1 if mode == "min" else -1
    best, kept, stale, seen = None, 0, 0, []
    for epoch, v in enumerate(valid[:max_epochs], start=1):
        seen.append(v)
        if best is None or sign * v < sign * best:
            best, kept, stale = v, epoch, 0
        else:
            stale += 1
            if stale >= patience:
                break
    return LearningCurve(train_loss=[1.0] * len(seen), valid=seen, valid_epochs=list(range(1, len(seen) + 1)), mode=mode,
                         best_epoch=kept, stopped_early=len(seen) < min(len(valid), max_epochs) or stale >= patience,
                         max_epochs=max_epochs).as_dict()


def test_a_fit_ended_by_its_cap_before_patience_ran_out_did_not_converge():
    improving = _curve([5, 4, 3, 2, 1], max_epochs=5)  # best at the last allowed epoch
    plateau = _curve([5, 4, 3, 3.5, 3.2], max_epochs=5)  # patience (2) ran out at epoch 5, the cap itself
    late_best = _curve([5, 4, 3, 2, 2.5], max_epochs=5)  # best at epoch 4 of 5: one epoch of patience left
    stopped = _curve([5, 4, 4.5, 4.6, 1], max_epochs=10)  # patience ran out at epoch 4
    rising = _curve([0.1, 0.2, 0.3], max_epochs=3, mode="max")  # a recall still rising at the cap
    assert late_best["best_epoch"] == 4 and not late_best["stopped_early"] and plateau["stopped_early"]
    assert [health.stopped_by_cap(c) for c in (improving, plateau, late_best, stopped, rising)] == [
        True, False, True, False, True]
    assert not health.stopped_by_cap({"train_loss": [3.0, 2.0], "max_epochs": 2})  # no validation: cannot tell
    checks = health.converged_before_cap("ds", {"MT: generator": {"fold1": improving, "fold2": plateau},
                                                "MT: encoder": {"fold1": stopped}, "CAR (base)": {"seed 1": plateau},
                                                "CAR": {"seed 1": rising}, "BPR": {"seed 1": stopped}})
    by_model = {c.model: c for c in checks}
    assert set(by_model) == {"MT", "CAR", "BPR"}
    assert (by_model["MT"].passed, by_model["MT"].value, by_model["MT"].detail) == (
        False, 1.0, "stopped by the cap before patience ran out: MT: generator fold1")
    assert not by_model["CAR"].passed and by_model["BPR"].passed


def test_the_recorder_makes_a_capped_model_unhealthy(tmp_path):
    from xrec_core.records import RunRecorder

    rec = RunRecorder("nar", config={}, scale="smoke", dataset="ds", seed=0, results_dir=tmp_path)
    rec.add_health([health.loss_decreased("CAR", "ds", [2.0, 1.0]), health.loss_decreased("BPR", "ds", [2.0, 1.0])])
    rec.add_learning_curve("CAR", "seed 1", _curve([0.1, 0.2, 0.3], max_epochs=3, mode="max"))
    rec.add_learning_curve("BPR", "seed 1", _curve([0.3, 0.2, 0.2], max_epochs=3, mode="max"))
    assert rec.unhealthy() == {"CAR"}
    stored = rec.as_dict()["health"]
    assert [(c["model"], c["check"], c["passed"]) for c in stored[2:]] == [
        ("CAR", "stopped improving before the epoch cap", False), ("BPR", "stopped improving before the epoch cap", True)]


def _study(complete: int, pruned: int = 0) -> dict:
    return {"trials_complete": complete, "trials_pruned": pruned, "trials_failed": 3}  # failed trials do not count


def test_every_tunable_model_is_held_to_the_largest_trial_budget_of_its_record():
    checks = {c.model: c for c in health.tuning_budget("ds", {"MT": _study(5, 1), "PMF": _study(6), "HFT": _study(4)},
                                                       untuned=["CTR", "MT"])}
    assert set(checks) == {"MT", "PMF", "HFT", "CTR"}  # MT was tuned: naming it untuned too changes nothing
    assert [(checks[m].passed, checks[m].value, checks[m].floor) for m in ("MT", "PMF", "HFT", "CTR")] == [
        (True, 6.0, 6.0), (True, 6.0, 6.0), (False, 4.0, 6.0), (False, 0.0, 6.0)]
    assert checks["HFT"].detail == "4 of 6 trials" and checks["CTR"].detail.startswith("not tuned")
    assert health.tuning_budget("ds", {}, untuned=["CTR", "PMF"]) == []  # nothing tuned: no budget to hold them to


def test_a_claim_naming_an_under_tuned_model_is_untestable(tmp_path):
    from xrec_core.claims import HOLDS, UNTESTABLE
    from xrec_core.experiments.common import ClaimJudge
    from xrec_core.records import MetricRow, RunRecorder

    rec = RunRecorder("mt", config={}, scale="smoke", dataset="ds", seed=0, results_dir=tmp_path)
    for model, values in (("MT", [0.7, 0.71, 0.69]), ("PMF", [0.9, 0.95, 0.93]), ("HFT", [0.9, 0.95, 0.93]),
                          ("CTR", [0.9, 0.95, 0.93])):
        rec.add_metric(MetricRow.from_values("T2", "ds", model, "MSE", values))
    rec.add_tuning("MT", _study(6))
    rec.add_tuning("PMF", _study(6))
    rec.add_tuning("HFT", _study(2))
    rec.add_untuned(["CTR"])
    assert rec.unhealthy() == {"HFT", "CTR"}
    judge = ClaimJudge(rec, unit="fold")
    values = {m: [r.values for r in rec.metrics if r.model == m][0] for m in ("MT", "PMF", "HFT", "CTR")}
    verdicts = [judge.better(f"MT beats {m}", "Table 2", values, "MT", m, higher_is_better=False).verdict
                for m in ("PMF", "HFT", "CTR")]
    assert verdicts == [HOLDS, UNTESTABLE, UNTESTABLE]
    stored = rec.as_dict()
    assert stored["untuned"] == ["CTR"]
    rec.add_untuned(["CTR", "PMF", "PMF"])  # named once, in one standard note per call
    assert rec.untuned == ["CTR", "PMF"]
    assert [n for n in rec.notes if n.startswith("not tuned")] == [
        "not tuned (no study on ds at smoke scale; the config's values were used; `xrec tune mt` gives every model "
        "the same trial budget): CTR", "not tuned (no study on ds at smoke scale; the config's values were used; "
        "`xrec tune mt` gives every model the same trial budget): PMF"]
    assert [(c["model"], c["passed"]) for c in stored["health"] if c["check"] == "tuned with the record's trial budget"] == [
        ("MT", True), ("PMF", True), ("HFT", False), ("CTR", False)]


def _stored_record(curve_a, curve_b):
    """A record as an older rule stored it: both convergence checks passed."""
    passed = {"dataset": "ds", "check": health.CONVERGENCE_CHECK, "value": 0.0, "floor": 0.0, "passed": True,
              "detail": "every fit stopped improving"}
    return {"schema": 1, "paper": "nar", "scale": "full", "dataset": "ds",
            "health": [{**passed, "model": "A"}, {**passed, "model": "B"},
                       {"model": "B", "dataset": "ds", "check": "training loss went down", "value": 1.0, "floor": 2.0,
                        "passed": True, "detail": ""}],
            "learning_curves": {"A": {"seed 1": curve_a}, "B (base)": {"seed 1": curve_b}},
            "claims": [{"claim": "A beats B", "source": "T1", "holds": True, "evidence": "p=0.01", "dataset": "ds",
                        "verdict": "holds", "models": ["A", "B"]},
                       {"claim": "B beats C", "source": "T1", "holds": False, "evidence": "p=0.4", "dataset": "ds",
                        "verdict": "fails", "models": ["B", "C"]}]}


def test_rejudging_a_stored_record_applies_todays_convergence_rule_to_its_curves_and_claims():
    from xrec_core.records import rejudge

    late_best = _curve([5, 4, 3, 2, 2.5], max_epochs=5)  # ended by the cap, one validation of patience left
    stopped = _curve([5, 4, 4.5, 4.6, 1], max_epochs=10)
    record = _stored_record(late_best, stopped)
    new, changed = rejudge(record)
    assert changed == ["A beats B"]
    checks = {(c["model"], c["check"]): c for c in new["health"]}
    assert not checks["A", health.CONVERGENCE_CHECK]["passed"] and checks["B", health.CONVERGENCE_CHECK]["passed"]
    assert checks["B", "training loss went down"]["passed"] and len(new["health"]) == 3
    first, second = new["claims"]
    assert (first["verdict"], first["holds"]) == ("untestable", None)
    assert first["evidence"].startswith("failed its training-health check: A") and "first holds: p=0.01" in first["evidence"]
    assert second == record["claims"][1]
    assert new["rejudged"][0]["claims_changed"] == ["A beats B"] and "git_commit" in new["rejudged"][0]["code_version"]
    assert record["claims"][0]["verdict"] == "holds"  # the input is left alone
    again, changed_again = rejudge(new)
    assert changed_again == [] and again == new  # judging twice changes nothing more


def test_rejudging_a_record_that_the_rule_does_not_touch_leaves_it_alone(tmp_path, monkeypatch):
    import json

    from xrec_core import records
    from xrec_core.cli import main

    monkeypatch.setenv(records.ALLOW_DIRTY_ENV, "1")
    stopped = _curve([5, 4, 4.5, 4.6, 1], max_epochs=10)
    (tmp_path / "nar").mkdir()
    healthy, sick = tmp_path / "nar" / "healthy.json", tmp_path / "nar" / "sick.json"
    healthy.write_text(json.dumps(_stored_record(stopped, stopped)))
    sick.write_text(json.dumps(_stored_record(_curve([3, 2, 1], max_epochs=3), stopped)))
    before = healthy.stat().st_mtime_ns
    assert main(["rejudge", "--results-dir", str(tmp_path)]) == 0
    assert healthy.stat().st_mtime_ns == before and "rejudged" not in json.loads(healthy.read_text())
    written = json.loads(sick.read_text())
    assert written["claims"][0]["verdict"] == "untestable" and len(written["rejudged"]) == 1
    assert main(["rejudge", "--results-dir", str(tmp_path)]) == 0
    assert len(json.loads(sick.read_text())["rejudged"]) == 1
