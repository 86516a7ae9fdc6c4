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

Trials in parallel: inside :func:`trials_in_parallel` (``xrec tune --executor ray``), :func:`tune`
runs its trials in batches of Ray tasks that share the study's SQLite file (Optuna's RDB storage
serves several processes; on a cluster of several machines the results folder must be on a
file system they share). Trial ``i`` is still drawn by ``TPESampler(seed=seed + i)``; the trials
of one batch see the study as it was when the batch started, so a study repeated with the same
number of parallel trials draws the same parameters (pruning may still depend on which trial
reports first).

Optuna is imported lazily, so a model module can declare its space without importing it.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .executor import Resources
from .health import NotConverged, require_converged
from .paths import results_root
from .records import dataset_slug
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


def convergence_check(enabled: bool) -> Callable[[Mapping[str, Mapping[str, Any]]], None]:
    """:func:`xrec_core.health.require_converged` when ``enabled`` (a config's ``tune_converged_only``), else a no-op."""
    return require_converged if enabled else (lambda curves: None)


@dataclass(frozen=True)
class _TrialExecution:
    executor: str = "serial"
    address: str | None = None
    resources: Resources = Resources()
    parallel: int | None = None


_TRIALS = _TrialExecution()


@contextmanager
def trials_in_parallel(executor: str = "ray", address: str | None = None, resources: Resources = Resources(),
                       parallel: int | None = None) -> Iterator[None]:
    """Within this block, :func:`tune` runs ``parallel`` trials at once as Ray tasks (``executor="ray"``).

    Parameters
    ----------
    executor : {"serial", "ray"}
        ``"serial"`` keeps one trial after another in this process.
    address : str, optional
        A running Ray cluster's head; default: a local Ray.
    resources : Resources
        What one trial asks Ray for (CPUs, GPUs).
    parallel : int, optional
        Trials at once; default: as many as the cluster's CPUs and GPUs fit.
    """
    from .executor import check_executor

    global _TRIALS
    check_executor(executor, address)
    if parallel is not None and parallel < 1:
        raise ValueError(f"parallel trials must be >= 1, got {parallel}")
    saved, _TRIALS = _TRIALS, _TrialExecution(executor, address, resources, parallel)
    try:
        yield
    finally:
        _TRIALS = saved


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
    ``dataset`` is named as in records and units (:func:`xrec_core.records.dataset_slug`): a registry
    name as it is, a file path by its stem and a short hash.
    """
    name = f"{scale}__{dataset_slug(dataset)}" if scale else dataset_slug(dataset)
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
        a trial whose objective raised :class:`NotConverged` is stored as pruned and counts;
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
    path = study_path(paper, dataset, results_dir, scale)
    batch_size = _batch_size(_TRIALS)
    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    failures = 0
    while _count(study, *finished) < n_trials:
        # The next trial's seed counts the trials the objective decided (finished, or failed with an
        # error) but not those an interruption or a killed process cut short: a continued study draws
        # what an uninterrupted one does, and a failed draw is not drawn again. Trials run one after
        # another (or in batches that see the study as it was when the batch started): a trial left
        # running by a killed process must not steer the sampler (no constant liar).
        decided = sum(t.state in finished or (t.state == TrialState.FAIL and "error" in t.user_attrs)
                      for t in study.get_trials(deepcopy=False))
        batch = min(batch_size, n_trials - _count(study, *finished))
        if _TRIALS.executor == "serial":
            outcomes = [run_one_trial(study, objective, space, seed + decided)]
        else:
            from .executor import map_on_ray

            outcomes, _ = map_on_ray(_trial_in_worker, [(str(path), model, direction, objective, space, seed + decided + i,
                                                         n_startup_trials, n_warmup_steps) for i in range(batch)],
                                     _TRIALS.resources, address=_TRIALS.address)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise TuningError(f"A trial of {model} on {dataset} could not run on Ray: {outcome}") from outcome
            state, error = outcome
            if state == TrialState.FAIL.name:
                failures += 1
                if failures >= n_trials:
                    raise TuningError(f"All {failures} trials of {model} on {dataset} in a row failed; the last: {error}")
            else:
                failures = 0
    if not _count(study, TrialState.COMPLETE):
        raise TuningError(f"No trial of {model} on {dataset} completed: every one was pruned")
    return TuneResult(best_params=dict(study.best_params), best_value=float(study.best_value),
                      n_trials_done=_count(study, *finished), n_pruned=_count(study, TrialState.PRUNED))


def _trial_function(objective: Objective, space: SearchSpace) -> Callable[["optuna.Trial"], float]:
    """Optuna's objective: draw ``space``, run ``objective`` with a pruning ``report``, note its error."""
    import optuna

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
        except NotConverged as exc:
            trial.set_user_attr("not_converged", str(exc)[:500])
            raise optuna.TrialPruned(str(exc)) from exc
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        except Exception as exc:
            trial.set_user_attr("error", " ".join(f"{type(exc).__name__}: {exc}".split())[:500])
            raise
        if math.isnan(value):  # optuna stores the trial as failed
            trial.set_user_attr("error", "the objective returned NaN")
        return value

    return run_trial


def run_one_trial(study: "optuna.Study", objective: Objective, space: SearchSpace, trial_seed: int) -> tuple[str, str | None]:
    """One trial of ``study`` drawn by ``TPESampler(seed=trial_seed)``: its final state's name and its error."""
    import optuna

    last: list[optuna.trial.FrozenTrial] = []
    study.sampler = optuna.samplers.TPESampler(seed=trial_seed, constant_liar=False)
    study.optimize(_trial_function(objective, space), n_trials=1, catch=(Exception,),
                   callbacks=[lambda _s, t: last.append(t)])
    return last[-1].state.name, last[-1].user_attrs.get("error")


def _trial_in_worker(path: str, model: str, direction: str, objective: Objective, space: SearchSpace, trial_seed: int,
                     n_startup_trials: int, n_warmup_steps: int) -> tuple[str, str | None]:
    """:func:`run_one_trial` in a Ray worker, on the study stored in the SQLite file ``path``."""
    import optuna

    study = optuna.create_study(storage=_storage(Path(path)), study_name=model, direction=direction, load_if_exists=True,
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials,
                                                                   n_warmup_steps=n_warmup_steps))
    return run_one_trial(study, objective, space, trial_seed)


def _batch_size(trials: _TrialExecution) -> int:
    """Trials per batch: one serially; on Ray the number asked for, else as many as the cluster fits."""
    if trials.executor == "serial":
        return 1
    if trials.parallel:
        return trials.parallel
    import ray

    from .executor import ray_init

    ray_init(trials.address)
    free = ray.cluster_resources()
    fits = [free.get("CPU", 0.0) // max(trials.resources.cpus, 1e-9)]
    if trials.resources.gpus:
        fits.append(free.get("GPU", 0.0) // trials.resources.gpus)
    return max(1, int(min(fits)))


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
