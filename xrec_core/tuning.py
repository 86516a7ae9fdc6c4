"""Hyperparameter tuning with Optuna: one resumable study per (paper, dataset, model).

A chapter declares each model's search space beside the model, as a mapping of parameter names
to dimensions::

    SPACE = {"lr": LogFloat(1e-4, 1e-1), "reg": LogFloat(1e-6, 1e-2), "k": Int(8, 128, log=True),
             "dropout": Float(0.0, 0.5), "loss": Categorical(("mse", "bpr"))}

and tunes it with :func:`tune` on a validation split carved from its training data (never the
test fold). Studies live in one SQLite file per chapter and dataset,
``results/<paper>/tuning/<dataset>.sqlite3``, one study per model named after it, so an
interrupted study continues where it stopped and ``optuna-dashboard sqlite:///<file>`` opens it.
:func:`best_params` gives a run the stored best parameters and :func:`tuning_summary` what its
record states about the study (:meth:`xrec_core.records.RunRecorder.add_tuning`).

Storage: Optuna's RDB storage on SQLite (``sqlite:///path``), not ``JournalStorage``: it is the
one file ``optuna-dashboard`` opens directly, and the writers here are few (a study runs its
trials one after another; at most a handful of processes tune different models of one file at
once) and write rarely (a trial lasts seconds to hours), which SQLite serves with its
busy timeout (60 s here) instead of failing with "database is locked". Heartbeats mark a trial
left running by a killed process as failed, so a resumed study does not count or wait on it.

Optuna is imported lazily, so a model module can declare its space without importing it.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .paths import results_root
from .records import portable_path
from .search_space import Categorical, Dimension, Float, Int, LogFloat, SearchSpace, describe_space, suggest  # noqa: F401

if TYPE_CHECKING:
    import optuna

#: seconds between a running trial's heartbeats, and after which a silent trial counts as failed
HEARTBEAT_INTERVAL_S = 60
HEARTBEAT_GRACE_S = 180
#: seconds a writer waits for another process's lock on the SQLite file
SQLITE_TIMEOUT_S = 60


class TuningError(RuntimeError):
    """A study that cannot give a result (every trial failed, no study stored)."""


#: ``report(step, value)``: an intermediate validation value; raises ``optuna.TrialPruned`` to stop
Report = Callable[[int, float], None]
#: ``objective(params, report) -> validation value``
Objective = Callable[[dict[str, Any], Report], float]


# --------------------------------------------------------------------------- studies
@dataclass(frozen=True)
class TuneResult:
    """What :func:`tune` left in the study: the best parameters and value, the trials that count."""

    best_params: dict[str, Any]
    best_value: float
    n_trials_done: int
    n_pruned: int


def study_path(paper: str, dataset: str, results_dir: str | Path | None = None, scale: str | None = None) -> Path:
    """The SQLite file of a chapter's studies on ``dataset``: ``<results>/<paper>/tuning/[<scale>__]<dataset>.sqlite3``.

    Pass the run's ``scale``: a study on smoke-sized data must not hand its parameters to a full run.
    """
    name = f"{scale}__{dataset}" if scale else dataset
    return results_root(results_dir) / paper / "tuning" / f"{name}.sqlite3"


def _storage(path: Path) -> "optuna.storages.RDBStorage":
    import fcntl

    import optuna

    path.parent.mkdir(parents=True, exist_ok=True)
    # processes opening a new file at once would each create its tables: hold the folder's lock meanwhile
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats
            return optuna.storages.RDBStorage(f"sqlite:///{path}",
                                              engine_kwargs={"connect_args": {"timeout": SQLITE_TIMEOUT_S}},
                                              heartbeat_interval=HEARTBEAT_INTERVAL_S, grace_period=HEARTBEAT_GRACE_S)
    finally:
        os.close(folder)  # releases the lock


def _load(paper: str, dataset: str, model: str, results_dir: str | Path | None,
          scale: str | None = None) -> "optuna.Study | None":
    import optuna

    path = study_path(paper, dataset, results_dir, scale)
    if not path.exists():
        return None
    try:
        return optuna.load_study(study_name=model, storage=_storage(path))
    except KeyError:
        return None


def _count(study: "optuna.Study", *states: "optuna.trial.TrialState") -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def tune(paper: str, dataset: str, model: str, objective: Objective, *,
         space: SearchSpace, direction: Literal["minimize", "maximize"], n_trials: int, seed: int,
         results_dir: str | Path | None = None, scale: str | None = None, n_startup_trials: int = 5,
         n_warmup_steps: int = 0) -> TuneResult:
    """Run (or continue) the study of ``model`` on ``dataset`` until it holds ``n_trials`` trials.

    Parameters
    ----------
    paper, dataset, model : str
        The study is ``model`` in :func:`study_path` ``(paper, dataset)``.
    objective : callable
        ``objective(params, report) -> float``: train with ``params`` (one value per dimension of
        ``space``) and return the validation value. ``report(step, value)`` reports an intermediate
        validation value (e.g. once per epoch) and raises ``optuna.TrialPruned`` when the pruner
        judges the trial hopeless; let that exception propagate.
    space : SearchSpace
        The dimensions searched.
    direction : {"minimize", "maximize"}
        Whether a lower or a higher validation value is better.
    n_trials : int
        The budget: finished (complete or pruned) trials the study holds when this returns.
        A study interrupted before continues up to it; one that already holds it runs nothing.
    seed : int
        Trial ``i`` (not counting trials cut short by an interruption) is drawn by
        ``TPESampler(seed=seed + i)``, so a study is repeatable, and one interrupted and continued
        draws what an uninterrupted one does.
    n_startup_trials, n_warmup_steps : int
        The ``MedianPruner``'s: prune nothing before that many finished trials, nor before that step.

    Returns
    -------
    TuneResult
        Best parameters and value over the whole study, finished and pruned trial counts.

    Raises
    ------
    TuningError
        When ``n_trials`` trials in a row fail. A failing trial (an exception other than pruning, or
        a NaN value) is stored as FAIL with its error (user attribute ``error``) and does not count;
        an interrupted one (``KeyboardInterrupt``, which propagates) is stored as FAIL too.

    Notes
    -----
    Processes tuning the same model at once share its study and budget (each checks the count
    before starting a trial, so together they may finish a trial or so over it).
    """
    import optuna
    from optuna.trial import TrialState

    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    study = optuna.create_study(storage=_storage(study_path(paper, dataset, results_dir, scale)), study_name=model,
                                direction=direction, load_if_exists=True,
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials,
                                                                   n_warmup_steps=n_warmup_steps))
    if study.direction.name.lower() != direction:
        raise TuningError(f"Study {model} in {study_path(paper, dataset, results_dir, scale)} was created to "
                          f"{study.direction.name.lower()}, not to {direction}")
    study.set_user_attr("seed", seed)
    study.set_user_attr("search_space", describe_space(space))

    def run_trial(trial: optuna.Trial) -> float:
        params = suggest(trial, space)

        def report(step: int, value: float) -> None:
            trial.report(float(value), step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"step {step}: {value:.6g} is worse than the median of earlier trials")

        try:
            value = float(objective(params, report))
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        except Exception as exc:
            trial.set_user_attr("error", " ".join(f"{type(exc).__name__}: {exc}".split())[:500])
            raise
        if math.isnan(value):  # optuna stores the trial as failed
            trial.set_user_attr("error", "the objective returned NaN")
        return value

    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    last: list[optuna.trial.FrozenTrial] = []
    failures = 0
    while _count(study, *finished) < n_trials:
        # The next trial's seed counts the trials the objective decided (finished, or failed with an
        # error) but not those an interruption or a killed process cut short: a continued study draws
        # what an uninterrupted one does, and a failed draw is not drawn again. Trials run one after
        # another: a trial left running by a killed process must not steer the sampler (no constant liar).
        decided = sum(t.state in finished or (t.state == TrialState.FAIL and "error" in t.user_attrs)
                      for t in study.get_trials(deepcopy=False))
        study.sampler = optuna.samplers.TPESampler(seed=seed + decided, constant_liar=False)
        study.optimize(run_trial, n_trials=1, catch=(Exception,), callbacks=[lambda _s, t: last.append(t)])
        if last[-1].state == TrialState.FAIL:
            failures += 1
            if failures >= n_trials:
                raise TuningError(f"All {failures} trials of {model} on {dataset} in a row failed; "
                                  f"the last: {last[-1].user_attrs.get('error')}")
        else:
            failures = 0
    if not _count(study, TrialState.COMPLETE):
        raise TuningError(f"No trial of {model} on {dataset} completed: every one was pruned")
    return TuneResult(best_params=dict(study.best_params), best_value=float(study.best_value),
                      n_trials_done=_count(study, *finished), n_pruned=_count(study, TrialState.PRUNED))


def best_params(paper: str, dataset: str, model: str, results_dir: str | Path | None = None,
                scale: str | None = None) -> dict[str, Any] | None:
    """The stored best parameters of ``model``'s study on ``dataset``; ``None`` without a completed trial."""
    from optuna.trial import TrialState

    study = _load(paper, dataset, model, results_dir, scale)
    if study is None or not _count(study, TrialState.COMPLETE):
        return None
    return dict(study.best_params)


def tuning_summary(paper: str, dataset: str, model: str, results_dir: str | Path | None = None,
                   scale: str | None = None) -> dict[str, Any]:
    """What a run record states about ``model``'s study (:meth:`RunRecorder.add_tuning`).

    Returns
    -------
    dict
        ``best_params``, ``best_value``, ``best_trial``, ``direction``, trial counts
        (``trials_complete``, ``trials_pruned``, ``trials_failed``), the ``seed`` and
        ``search_space`` of the latest :func:`tune` call, and ``storage``: the SQLite file,
        relative to the repository when inside it.
    """
    from optuna.trial import TrialState

    path = study_path(paper, dataset, results_dir, scale)
    study = _load(paper, dataset, model, results_dir, scale)
    if study is None or not _count(study, TrialState.COMPLETE):
        raise TuningError(f"No completed study of {model} in {path}; "
                          f"run `xrec tune {paper} -p dataset={dataset}` first")
    best = study.best_trial
    return {"study": model, "storage": portable_path(path), "direction": study.direction.name.lower(),
            "best_params": dict(best.params), "best_value": float(best.value), "best_trial": best.number,
            "trials_complete": _count(study, TrialState.COMPLETE), "trials_pruned": _count(study, TrialState.PRUNED),
            "trials_failed": _count(study, TrialState.FAIL), "seed": study.user_attrs.get("seed"),
            "search_space": study.user_attrs.get("search_space")}
