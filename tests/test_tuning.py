"""Optuna studies: search spaces, resumable SQLite studies, pruning, failures, the `xrec tune` command."""

from __future__ import annotations

import json
import sys
import textwrap

import optuna
import pytest

from xrec_core import cli
from xrec_core.papers import PAPERS, Paper
from xrec_core.records import RunRecorder
from xrec_core.tuning import (Categorical, Float, Int, LogFloat, TuningError, best_params, study_path, suggest, tune,
                              tuning_summary)

SPACE = {"x": Float(-3.0, 3.0), "lr": LogFloat(1e-4, 1e-1), "k": Int(4, 64, log=True), "loss": Categorical(["mse", "bpr"])}


@pytest.fixture(autouse=True)
def _quiet_optuna():
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    optuna.logging.set_verbosity(level)


def quadratic(params, report):
    return (params["x"] - 1.0) ** 2 + (0.1 if params["loss"] == "bpr" else 0.0)


def test_quadratic_optimum_is_found(tmp_path):
    result = tune("toy", "ds", "quad", quadratic, space=SPACE, direction="minimize", n_trials=30, seed=0,
                  results_dir=tmp_path)
    assert abs(result.best_params["x"] - 1.0) < 0.2
    assert result.best_params["loss"] == "mse"
    assert 1e-4 <= result.best_params["lr"] <= 1e-1 and 4 <= result.best_params["k"] <= 64
    assert isinstance(result.best_params["k"], int)
    assert result.n_trials_done == 30 and result.n_pruned == 0
    assert study_path("toy", "ds", tmp_path) == tmp_path / "toy" / "tuning" / "ds.sqlite3"
    assert best_params("toy", "ds", "quad", tmp_path) == result.best_params


def test_interrupted_study_resumes_to_exactly_the_budget(tmp_path):
    calls = []

    def interrupted(params, report):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(params)
        return quadratic(params, report)

    with pytest.raises(KeyboardInterrupt):
        tune("toy", "ds", "quad", interrupted, space=SPACE, direction="minimize", n_trials=10, seed=7,
             results_dir=tmp_path / "a")
    resumed = tune("toy", "ds", "quad", quadratic, space=SPACE, direction="minimize", n_trials=10, seed=7,
                   results_dir=tmp_path / "a")
    assert resumed.n_trials_done == 10
    summary = tuning_summary("toy", "ds", "quad", tmp_path / "a")
    assert (summary["trials_complete"], summary["trials_pruned"], summary["trials_failed"]) == (10, 0, 1)

    # a finished study runs nothing more
    again = tune("toy", "ds", "quad", lambda p, r: pytest.fail("ran a trial beyond the budget"), space=SPACE,
                 direction="minimize", n_trials=10, seed=7, results_dir=tmp_path / "a")
    assert again == resumed
    # and the interruption changed nothing: an uninterrupted study draws the same trials
    straight = tune("toy", "ds", "quad", quadratic, space=SPACE, direction="minimize", n_trials=10, seed=7,
                    results_dir=tmp_path / "b")
    assert straight.best_params == resumed.best_params


def test_hopeless_trials_are_pruned(tmp_path):
    steps_run = []

    def epochs(params, report):
        loss = 0.0
        for step in range(10):
            steps_run.append(step)
            loss = (params["x"] - 1.0) ** 2 + 1.0 / (step + 1)
            report(step, loss)
        return loss

    result = tune("toy", "ds", "epochs", epochs, space={"x": Float(-3.0, 3.0)}, direction="minimize", n_trials=20,
                  seed=0, results_dir=tmp_path, n_startup_trials=3)
    assert result.n_pruned > 0
    assert result.n_trials_done == 20
    assert len(steps_run) < 20 * 10  # pruned trials stopped early
    assert tuning_summary("toy", "ds", "epochs", tmp_path)["trials_pruned"] == result.n_pruned


def test_same_seed_same_study_in_separate_files(tmp_path):
    runs = [tune("toy", "ds", "quad", quadratic, space=SPACE, direction="minimize", n_trials=12, seed=seed,
                 results_dir=tmp_path / name) for name, seed in (("a", 3), ("b", 3), ("c", 4))]
    assert runs[0].best_params == runs[1].best_params
    assert runs[0].best_params != runs[2].best_params


def test_failed_trials_are_stored_and_do_not_count(tmp_path):
    def flaky(params, report):
        if params["x"] < 0:
            raise ValueError("diverged\nat epoch 2")
        return quadratic(params, report)

    result = tune("toy", "ds", "flaky", flaky, space=SPACE, direction="minimize", n_trials=8, seed=1,
                  results_dir=tmp_path)
    summary = tuning_summary("toy", "ds", "flaky", tmp_path)
    assert result.n_trials_done == summary["trials_complete"] == 8
    assert summary["trials_failed"] > 0
    study = optuna.load_study(study_name="flaky", storage=f"sqlite:///{study_path('toy', 'ds', tmp_path)}")
    errors = {t.user_attrs["error"] for t in study.trials if t.state == optuna.trial.TrialState.FAIL}
    assert errors == {"ValueError: diverged at epoch 2"}

    with pytest.raises(TuningError, match=r"^All 3 trials of broken on ds in a row failed; the last: ValueError: ") as err:
        tune("toy", "ds", "broken", lambda p, r: flaky({**p, "x": -1.0}, r), space=SPACE, direction="minimize",
             n_trials=3, seed=1, results_dir=tmp_path)
    assert "\n" not in str(err.value)


def test_summary_goes_into_the_record(tmp_path):
    tune("toy", "ds", "quad", quadratic, space=SPACE, direction="minimize", n_trials=3, seed=0, results_dir=tmp_path)
    rec = RunRecorder("toy", config={}, scale="smoke", dataset="ds", seed=0, results_dir=tmp_path)
    rec.add_tuning("quad", tuning_summary("toy", "ds", "quad", tmp_path))
    saved = json.loads(rec.finish().read_text())["tuning"]["quad"]
    assert saved["trials_complete"] == 3 and saved["seed"] == 0 and saved["direction"] == "minimize"
    assert saved["search_space"]["lr"] == {"type": "LogFloat", "low": 1e-4, "high": 1e-1}
    assert saved["best_params"] == best_params("toy", "ds", "quad", tmp_path)
    with pytest.raises(TuningError, match="xrec tune toy -p dataset=ds"):
        tuning_summary("toy", "ds", "never-tuned", tmp_path)
    assert best_params("toy", "other", "quad", tmp_path) is None
    assert not study_path("toy", "other", tmp_path).exists()  # asking never creates a study file


def test_search_space_declarations():
    with pytest.raises(ValueError):
        LogFloat(0.0, 1.0)
    with pytest.raises(ValueError):
        Int(5, 5)
    with pytest.raises(ValueError):
        Categorical([])
    trial = optuna.trial.FixedTrial({"x": 0.5, "lr": 0.01, "k": 8, "loss": "bpr"})
    assert suggest(trial, SPACE) == {"x": 0.5, "lr": 0.01, "k": 8, "loss": "bpr"}
    assert hash(Categorical(["a", "b"])) == hash(Categorical(("a", "b")))  # frozen, usable as defaults


# --------------------------------------------------------------------------- xrec tune
CHAPTER = '''
from dataclasses import dataclass
from typing import ClassVar

from xrec_core.config import ExperimentConfig
from xrec_core.tuning import Float, tune

@dataclass
class ToyConfig(ExperimentConfig):
    SCALES: ClassVar = {"paper": {}, "full": {"tune_trials": 4}}
    REQUIRES: ClassVar = ()
'''
HOOK = '''
def tune_models(cfg, models, n_trials):
    out = {}
    for model in models or ["A", "B"]:
        out[model] = tune("toychapter", cfg.dataset, model, lambda p, r: (p["x"] - 1) ** 2, space={"x": Float(-2, 2)},
                          direction="minimize", n_trials=n_trials or cfg.tune_trials, seed=cfg.seed,
                          results_dir=cfg.results_dir or None, scale=cfg.scale)
    return out
'''


def _chapter(tmp_path, monkeypatch, with_hook: bool) -> None:
    name = f"toychapter_{'hook' if with_hook else 'nohook'}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(CHAPTER + (HOOK if with_hook else "")))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)
    monkeypatch.setitem(PAPERS, "toychapter", Paper("toychapter", "Toy", "-", "-", "notebooks/toy.ipynb",
                                                    f"{name}:ToyConfig", "toy-a"))


def test_xrec_tune_without_hook_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    _chapter(tmp_path, monkeypatch, with_hook=False)
    assert cli.main(["tune", "toychapter", "-p", "dataset=toy-a"]) == 2
    err = capsys.readouterr().err
    assert err == "xrec: error: chapter toychapter does not define tune_models yet\n"
    assert cli.main(["tune", "mt", "-p", "dataset=nope"]) == 2  # a real chapter checks the dataset first
    err = capsys.readouterr().err
    assert err.startswith("xrec: error: Unknown dataset 'nope'") and err.count("\n") == 1


def test_xrec_tune_runs_the_chapter_hook(tmp_path, monkeypatch, capsys):
    _chapter(tmp_path, monkeypatch, with_hook=True)
    results = tmp_path / "res"
    assert cli.main(["tune", "toychapter", "--scale", "full", "-p", "dataset=toy-a", "--model", "B", "--trials", "3",
                     "--results-dir", str(results)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith("toychapter/toy-a B: best ") and "3 trials, 0 pruned" in out[0]
    assert out[1] == f"optuna-dashboard sqlite:///{study_path('toychapter', 'toy-a', results, 'full')}"
    assert out[1].endswith("/toychapter/tuning/full__toy-a.sqlite3")  # a smoke study never feeds a full run
    assert tuning_summary("toychapter", "toy-a", "B", results, scale="full")["trials_complete"] == 3
    assert best_params("toychapter", "toy-a", "B", results) is None  # not the scale-less file
    assert best_params("toychapter", "toy-a", "A", results, scale="full") is None
    assert cli.main(["tune", "toychapter", "--scale", "full", "-p", "dataset=toy-a", "--model", "A", "B",
                     "--results-dir", str(results)]) == 0
    assert "toychapter/toy-a A: best " in capsys.readouterr().out
    assert tuning_summary("toychapter", "toy-a", "A", results, scale="full")["trials_complete"] == 4  # the scale's tune_trials
    assert tuning_summary("toychapter", "toy-a", "B", results, scale="full")["trials_complete"] == 4  # continued from 3


def test_xrec_tune_limits_the_threads_of_serial_trials(tmp_path, monkeypatch):
    """``-p n_threads=1`` holds for the trials (they ran on torch's default pool of every core before)."""
    import xrec_core.device

    _chapter(tmp_path, monkeypatch, with_hook=True)
    calls: list[int] = []
    monkeypatch.setattr(xrec_core.device, "set_threads", calls.append)
    assert cli.main(["tune", "toychapter", "--scale", "full", "-p", "dataset=toy-a", "-p", "n_threads=1", "--model", "B",
                     "--trials", "1", "--results-dir", str(tmp_path / "res")]) == 0
    assert calls == [1]


def test_study_files_name_datasets_like_records_and_units(tmp_path):
    from xrec_core.records import dataset_slug
    from xrec_core.tuning import study_path

    assert study_path("nar", "amazon2014-instruments", tmp_path, "full").name == "full__amazon2014-instruments.sqlite3"
    a, b = tmp_path / "a" / "reviews.json", tmp_path / "b" / "reviews.json"  # two files of one name
    assert study_path("mt", str(a), tmp_path, "full") != study_path("mt", str(b), tmp_path, "full")
    assert study_path("mt", str(a), tmp_path).name == f"{dataset_slug(str(a))}.sqlite3"
    assert "/" not in study_path("mt", str(a), tmp_path, "full").name.removesuffix(".sqlite3")


def test_a_fit_ended_by_its_cap_is_pruned_and_never_the_best(tmp_path):
    from xrec_core.health import NotConverged, require_converged

    def capped(params, report):
        # x < 0 stands for a learning rate so small that the fit ends at its cap before patience runs out:
        # its (better-looking) value must not win
        curve = {"epochs": 10, "max_epochs": 10, "best_epoch": 10 if params["x"] < 0 else 6, "valid": [1.0] * 10,
                 "stopped_early": params["x"] >= 0}
        require_converged({"generator": curve})
        return (params["x"] - 1.0) ** 2

    result = tune("toy", "ds", "capped", lambda p, r: capped(p, r) - 10.0 * (p["x"] < 0), space=SPACE,
                  direction="minimize", n_trials=20, seed=0, results_dir=tmp_path)
    study = optuna.load_study(study_name="capped", storage=f"sqlite:///{study_path('toy', 'ds', tmp_path)}")
    capped_trials = [t for t in study.trials if t.params["x"] < 0]
    assert capped_trials and all(t.state.name == "PRUNED" for t in capped_trials)
    assert all(t.user_attrs["not_converged"] == "stopped by the epoch cap before patience ran out: generator (10 of 10 epochs)"
               for t in capped_trials)
    assert result.best_params["x"] >= 0 and result.n_trials_done == 20 and result.n_pruned >= len(capped_trials)
    require_converged({"a": {"epochs": 10, "max_epochs": 10, "best_epoch": 7, "valid": [1.0] * 10, "stopped_early": True}})
    with pytest.raises(NotConverged, match="a .10 of 10 epochs"):  # best earlier, but patience had not run out
        require_converged({"a": {"epochs": 10, "max_epochs": 10, "best_epoch": 7, "valid": [1.0] * 10}})
    with pytest.raises(NotConverged, match="b .3 of 3 epochs"):
        require_converged({"a": {"epochs": 4, "max_epochs": 10, "best_epoch": 4, "valid": [1.0] * 4, "stopped_early": True},
                           "b": {"epochs": 3, "max_epochs": 3, "best_epoch": 3, "valid": [1.0] * 3}})


@pytest.mark.parametrize("paper", ["mt", "semax", "gru", "mvae", "nar"])
def test_only_smoke_scale_tunes_on_unconverged_fits(paper):
    from xrec_core.papers import get_paper

    cls = get_paper(paper).config_class()
    assert cls.from_scale("smoke").tune_converged_only is False  # shared smoke default, not the chapter's copy
    assert all(cls.from_scale(scale).tune_converged_only for scale in cls.SCALES if scale != "smoke")
    assert cls.from_scale("smoke", tune_converged_only=True).tune_converged_only is True  # a chapter or user may override
