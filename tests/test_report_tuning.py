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
    assert [t.get_text() for t in fig.axes[0].texts] == ["study file not in this checkout"]


def test_committed_tuning_shows_and_saves_one_history_per_tuned_record(record, tmp_path):
    results = tmp_path / "results"
    (results / "nar").mkdir(parents=True)
    (results / "nar" / "nar__full__d__seed1.json").write_text(json.dumps(record))
    (results / "nar" / "nar__full__e__seed1.json").write_text(json.dumps({**record, "dataset": "e", "tuning": {}}))
    saved = committed_tuning("nar", root=results, figure_dir=tmp_path / "figs")
    assert [p.name for p in saved] == ["nar__full__d__seed1__tuning.png"] and saved[0].stat().st_size > 0
    fig = tuning_history_figure(record)
    assert sum(ax.get_visible() for ax in fig.axes) == 2
