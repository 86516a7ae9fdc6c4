"""The chapters' tuning sections: budgets from the record, trial histories from the study file the record names."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import optuna  # noqa: E402
import pytest  # noqa: E402

from xrec_core.records import RECORD_SCHEMA_VERSION  # noqa: E402
from xrec_core.report import committed_tuning, study_trials, tuning_history_figure, tuning_table  # noqa: E402
from xrec_core.tuning import study_path, tuning_summary  # noqa: E402


def _study(tmp_path, model: str, values: list[float | None], direction: str = "minimize") -> optuna.Study:
    """A study whose trials report ``values`` in order; ``None`` is a trial pruned after reporting 5.0."""
    path = study_path("nar", "d", tmp_path, "full")
    path.parent.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(study_name=model, storage=f"sqlite:///{path}", direction=direction, load_if_exists=True)
    for value in values:
        trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)})
        if value is None:
            trial.report(5.0, 1)
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
    return study


@pytest.fixture
def record(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _study(tmp_path, "NCF", [3.0, 1.0, None, 2.0])
    _study(tmp_path, "CAR", [0.2, 0.4, 0.3], direction="maximize")
    rec = {"schema": RECORD_SCHEMA_VERSION, "paper": "nar", "scale": "full", "dataset": "d", "seed": 1,
           "tuning": {m: tuning_summary("nar", "d", m, tmp_path, "full") for m in ("NCF", "CAR")}}
    _study(tmp_path, "NCF", [0.5, 0.25])  # the study went on after the record was written
    return rec


def test_tuning_table_states_each_models_budget_from_the_record(record):
    table = tuning_table(record).set_index("model")
    assert table.loc["NCF", ["trials", "complete", "pruned", "failed"]].tolist() == [4, 3, 1, 0]
    assert table.loc["NCF", "best value"] == 1.0 and table.loc["NCF", "best trial"] == 1
    assert table.loc["CAR", ["trials", "best value", "direction"]].tolist() == [3, 0.4, "maximize"]
    assert table.loc["CAR", "best parameters"].startswith("lr=")


def test_trial_history_stops_at_the_records_count_and_tracks_the_best_in_the_studys_direction(record):
    ncf = study_trials(record, "NCF")
    assert ncf["number"].tolist() == [0, 1, 2, 3]  # the two later trials (0.5, 0.25) are not the record's
    assert ncf["state"].tolist() == ["complete", "complete", "pruned", "complete"]
    assert ncf["value"].tolist() == [3.0, 1.0, 5.0, 2.0]  # a pruned trial at its last reported value
    assert ncf["best_so_far"].tolist() == [3.0, 1.0, 1.0, 1.0]
    assert study_trials(record, "CAR")["best_so_far"].tolist() == [0.2, 0.4, 0.4]


def test_a_missing_study_file_is_reported_not_raised(record, tmp_path):
    moved = {**record, "tuning": {"NCF": {**record["tuning"]["NCF"], "storage": str(tmp_path / "gone.sqlite3")}}}
    assert study_trials(moved, "NCF") is None
    fig = tuning_history_figure(moved)
    assert [t.get_text() for t in fig.axes[0].texts] == ["this record's trials are not in this checkout"]
    recreated = {**record, "tuning": {"NCF": {**record["tuning"]["NCF"], "best_value": 0.75}}}  # not among its trials
    assert study_trials(recreated, "NCF") is None and study_trials(record, "NCF") is not None


def test_committed_tuning_shows_and_saves_one_history_per_tuned_record(record, tmp_path):
    results = tmp_path / "results"
    (results / "nar").mkdir(parents=True)
    (results / "nar" / "nar__full__d__seed1.json").write_text(json.dumps(record))
    (results / "nar" / "nar__full__e__seed1.json").write_text(json.dumps({**record, "dataset": "e", "tuning": {}}))
    saved = committed_tuning("nar", root=results, figure_dir=tmp_path / "figs")
    assert [p.name for p in saved] == ["nar__full__d__seed1__tuning.png"] and saved[0].stat().st_size > 0
    fig = tuning_history_figure(record)
    assert sum(ax.get_visible() for ax in fig.axes) == 2


def test_tuning_seconds_sum_the_durations_of_the_trials_the_record_counted(record, tmp_path):
    from xrec_core.bench_report import benchmark_summary_markdown, full_book_compute, tuning_seconds

    storage = f"sqlite:///{study_path('nar', 'd', tmp_path, 'full')}"
    want = 0.0
    for model, counted in (("NCF", 4), ("CAR", 3)):
        trials = sorted(optuna.load_study(study_name=model, storage=storage).trials, key=lambda t: t.number)
        assert len(trials) > counted or model == "CAR"  # NCF's study went on after the record
        want += sum((t.datetime_complete - t.datetime_start).total_seconds() for t in trials[:counted])
    assert want > 0 and tuning_seconds(record) == (pytest.approx(want, rel=1e-9), 0)
    assert study_trials(record, "NCF")["duration_s"].notna().all()
    full = {**record, "units_compute_s": 10.0, "started_at": "2026-12-02"}
    assert full_book_compute([full])["tuning h"].iloc[0] == pytest.approx(want / 3600)
    assert "hours** of trials (wall clock" in benchmark_summary_markdown([full])
    moved = {**full, "tuning": {"NCF": {**record["tuning"]["NCF"], "storage": str(tmp_path / "gone.sqlite3")}}}
    assert "1 record names a study file this checkout lacks" in benchmark_summary_markdown([moved])
    assert tuning_seconds({"tuning": {}}) == (0.0, 0)


def test_a_trial_cut_off_with_its_process_has_no_duration(record, tmp_path):
    from xrec_core.bench_report import tuning_seconds

    storage = f"sqlite:///{study_path('nar', 'd', tmp_path, 'full')}"
    study = optuna.load_study(study_name="CAR", storage=storage)
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)  # failed later, without an error: cut off
    failed = study.ask()
    failed.set_user_attr("error", "ValueError: bad")
    study.tell(failed, state=optuna.trial.TrialState.FAIL)
    rec = {**record, "tuning": {"CAR": {**record["tuning"]["CAR"], "trials_failed": 2}}}
    trials = study_trials(rec, "CAR")
    assert trials["state"].tolist()[-2:] == ["fail", "fail"]
    assert trials["duration_s"].isna().tolist() == [False, False, False, True, False]
    seconds, untimed = tuning_seconds(rec)
    assert untimed == 1 and seconds == pytest.approx(trials["duration_s"].sum())
