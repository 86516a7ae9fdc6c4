"""The SEMAX chapter's protocol: every model x seed, the simple baselines and the beta sweep, as resumable units.

Every neural model fits on the fit part of the temporal split and early-stops on the validation
part (the latest 10% of the training period); its test predictions, errors and learning curve
are one unit of work in :func:`xrec_core.experiments.common.unit_store`, keyed by model and seed.
The seeds are the units the claims are paired over.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...data.feedback import Ratings
from ...metrics.rating import mae, rmse
from ...models.registry import build
from ...models.semax import ReviewSet
from ...records import UnitStore, atomic_torch_save, to_json
from ...training import LearningCurve
from ..common import unit_store
from .config import PAPER_KEY, PAPER_MODELS, SELECTION_FIELDS, SemaxConfig
from .data import SemaxData, load_data

log = logging.getLogger(__name__)

#: the learned simple baselines tuned with the paper's models, and the registry names of their studies
TUNED_BASELINES = ("User+item bias", "Biased MF (tuned)")
TUNED_NAMES = {"User+item bias": "UserItemBias", "Biased MF (tuned)": "BiasedMF"}

#: a unit's result: {"MAE", "RMSE", "MSE", "pred", "curve", "examples_per_s"}
UnitResult = dict[str, Any]


def semax_store(cfg: SemaxConfig) -> UnitStore:
    """The run's unit store; its fingerprint ignores :data:`SELECTION_FIELDS` (which units run, threads, device).

    Adding a model or a seed, or changing the thread count, reuses every finished unit.
    """
    defaults = {f.name: f.default for f in dataclasses.fields(SemaxConfig) if f.name in SELECTION_FIELDS}
    return unit_store(PAPER_KEY, dataclasses.replace(cfg, **defaults))


def model_params(name: str, cfg: SemaxConfig, seed: int, tuned: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Constructor arguments of ``name``: the config's values, overridden by ``tuned`` (a study's best parameters)."""
    train = dict(lr=cfg.lr, batch_size=cfg.batch_size, max_epochs=cfg.max_epochs, patience=cfg.patience,
                 weight_decay=cfg.weight_decay, seed=seed, device=cfg.device, progress=cfg.progress)
    cnn = dict(emb_dim=cfg.cnn_emb_dim, n_filters=cfg.cnn_filters, window=cfg.cnn_window, latent=cfg.cnn_latent,
               fm_k=cfg.fm_k, dropout=cfg.dropout)
    params: dict[str, Any]
    if name == "SEMA":
        params = dict(dim=cfg.dim, **train)
    elif name == "SEMAX":
        params = dict(dim=cfg.dim, beta=cfg.beta, lam=cfg.lam, **train)
    elif name == "DeepCoNN":
        params = dict(**cnn, **train)
    elif name in ("TransNets", "TransNets-Ext"):
        params = dict(transform_layers=cfg.transform_layers, rating_loss=cfg.transnets_rating_loss, **cnn, **train)
    elif name == "NCF":
        params = dict(loss="mse", k=cfg.ncf_factors, layers=tuple(cfg.ncf_layers), lr=cfg.lr, batch_size=cfg.batch_size,
                      weight_decay=cfg.ncf_weight_decay, epochs=cfg.max_epochs, patience=cfg.patience, seed=seed,
                      device=cfg.device)
    else:
        raise ValueError(f"Unknown model {name!r}; valid: {', '.join(PAPER_MODELS)}")
    return {**params, **(tuned or {})}


def build_model(name: str, cfg: SemaxConfig, seed: int, beta: float | None = None,
                tuned: Mapping[str, Any] | None = None) -> Any:
    """SEMA, SEMAX, DeepCoNN, TransNets or TransNets-Ext from the registry (NCF: :func:`fit_ncf`)."""
    if name == "NCF":
        raise ValueError("NCF is fitted by fit_ncf (it reads rating triples, not the review sets)")
    params = model_params(name, cfg, seed, tuned)
    if beta is not None:
        params["beta"] = beta
    return build(name, **params)


def tuned_params(cfg: SemaxConfig, name: str) -> dict[str, Any] | None:
    """The best parameters of ``name``'s study on this dataset and scale (``xrec tune semax``), if one exists."""
    from ...tuning import best_params

    return best_params(PAPER_KEY, cfg.dataset, TUNED_NAMES.get(name, name), cfg.results_dir or None, cfg.scale)


def fit_ncf(cfg: SemaxConfig, train: ReviewSet, valid: ReviewSet, seed: int, tuned: Mapping[str, Any] | None = None,
            on_epoch: Callable[[int, float], None] | None = None) -> tuple[Any, LearningCurve]:
    """NCF (NeuMF, squared loss) on the rating triples, early-stopped on the validation RMSE (best epoch kept)."""
    model = build("NCF", **model_params("NCF", cfg, seed, tuned))
    model.fit(rating_triples(train), rating_triples(valid), on_epoch=on_epoch)
    return model, model.curve_


def rating_triples(reviews: ReviewSet) -> Ratings:
    """The (user, item, rating) triples of ``reviews``: what the shared rating baselines fit on."""
    c = reviews.corpus
    return Ratings(c.users[reviews.idx], c.items[reviews.idx], reviews.ratings, c.n_users, c.n_items)


def train_eval(name: str, cfg: SemaxConfig, data: SemaxData, seed: int, beta: float | None = None,
               checkpoint: str | None = None, tuned: Mapping[str, Any] | None = None) -> UnitResult:
    """One unit: fit ``name`` with ``seed`` (early-stopped on the validation split), score it on the test period."""
    test = data.test
    if name == "NCF":
        model, curve = fit_ncf(cfg, data.fit, data.valid, seed, tuned)
        pred = model.predict(data.corpus.users[test.idx], data.corpus.items[test.idx])
    else:
        model = build_model(name, cfg, seed, beta, tuned).fit(data.fit, data.valid)
        curve = model.curve_
        pred = model.predict(test)
        if checkpoint is not None:
            atomic_torch_save(model.net.state_dict(), checkpoint)
    return _scores(test.ratings, np.asarray(pred, dtype=np.float64)) | {
        "curve": curve.as_dict(),
        "examples_per_s": len(data.fit_idx) * curve.epochs / max(curve.seconds, 1e-9)}


def _scores(y: np.ndarray, pred: np.ndarray) -> UnitResult:
    return {"MAE": mae(y, pred), "RMSE": rmse(y, pred), "MSE": float(np.mean((y - pred) ** 2)), "pred": pred.tolist()}


def fit_simple_baselines(cfg: SemaxConfig, data: SemaxData, seed: int,
                         tuned: Mapping[str, Mapping[str, Any] | None] | None = None) -> dict[str, UnitResult]:
    """Global mean, user+item biases and biased MF: their test scores.

    With a study's best parameters (``tuned["User+item bias"]``, ``tuned["Biased MF (tuned)"]``, from
    ``xrec tune semax`` on the validation split) those are used; without one, user+item biases keep
    their defaults and biased MF takes the config's ``mf_k`` and ``mf_reg``.
    """
    tuned = tuned or {}
    fit, valid, test = rating_triples(data.fit), rating_triples(data.valid), rating_triples(data.test)
    params = {"Global mean": {}, "User+item bias": tuned.get("User+item bias") or {},
              "Biased MF (tuned)": {"k": cfg.mf_k, "reg": cfg.mf_reg, **(tuned.get("Biased MF (tuned)") or {}), "seed": seed}}
    keys = {"Global mean": "GlobalMean", **TUNED_NAMES}
    out = {}
    for name, key in keys.items():
        model = build(key, **params[name]).fit(fit, valid)
        out[name] = _scores(test.ratings, np.asarray(model.predict(test.users, test.items), dtype=np.float64))
    return out


@dataclass
class SemaxRun:
    """What a run computed: per model, one result per seed; the beta sweep; the models that crashed."""

    data: SemaxData
    results: dict[str, list[UnitResult]]
    sweep: dict[float, list[UnitResult]] | None = None
    crashed: dict[str, str] = field(default_factory=dict)


def run_models(cfg: SemaxConfig, data: SemaxData, store: UnitStore, compute: Callable[..., UnitResult] = train_eval,
               executor: str = "serial", address: str | None = None) -> tuple[dict[str, list[UnitResult]], dict[str, str]]:
    """Every model of ``cfg.models`` with every seed (one resumable unit each), then the simple baselines.

    A model that raises on any seed is logged and left out (``crashed[name]`` holds the error); the
    claims naming it become untestable and the record notes the missing rows. ``executor`` /
    ``address``: where the units run (:func:`xrec_core.executor.run_units`).
    """
    from ...executor import Unit, run_units, unit_resources

    tuned = {name: tuned_params(cfg, name) for name in (*cfg.models, *TUNED_BASELINES)}
    resources = unit_resources(cfg.n_threads, cfg.device)
    keys = {(name, s): f"model/{name}/seed{s}{_tuned_suffix(tuned[name])}" for name in cfg.models for s in cfg.seeds()}
    units = [Unit(key, compute, (name, cfg, data, s), resources, {
        "checkpoint": str(store.root / f"SEMAX__seed{s}.pt") if name == "SEMAX" and s == cfg.seed else None,
        "tuned": tuned[name]}) for (name, s), key in keys.items()]
    if cfg.simple_baselines:
        base = {name: tuned[name] for name in TUNED_BASELINES}
        suffix = _tuned_suffix({k: v for k, v in base.items() if v})
        units += [Unit(f"baselines/seed{s}{suffix}", fit_simple_baselines, (cfg, data, s, base), resources)
                  for s in cfg.seeds()]
    run = run_units(store, units, executor=executor, address=address, progress=cfg.progress, errors="collect")
    results: dict[str, list[UnitResult]] = {}
    crashed: dict[str, str] = {}
    for (name, s), key in keys.items():
        if key in run.failed:  # a crashed model must not take the run down; its claims become untestable
            log.error("%s seed %d crashed: %s", name, s, run.failed[key])
            crashed.setdefault(name, run.failed[key])
        elif name not in crashed:
            results.setdefault(name, []).append(run.results[key])
    for name in crashed:
        results.pop(name, None)
    for unit in units[len(keys):]:
        if unit.key in run.failed:
            raise RuntimeError(f"{unit.key} failed: {run.failed[unit.key]}")
        for name, res in run.results[unit.key].items():
            results.setdefault(name, []).append(res)
    return results, crashed


def run_beta_sweep(cfg: SemaxConfig, data: SemaxData, store: UnitStore, main: dict[str, list[UnitResult]],
                   compute: Callable[..., UnitResult] = train_eval, executor: str = "serial",
                   address: str | None = None) -> dict[float, list[UnitResult]]:
    """Figure 6: SEMAX's test error for every ``beta`` of ``cfg.beta_grid`` (``beta_seeds`` seeds each).

    The units of the config's own ``beta`` are the main run's SEMAX units, reused.
    """
    from ...executor import Unit, run_units, unit_resources

    tuned = tuned_params(cfg, "SEMAX")
    resources = unit_resources(cfg.n_threads, cfg.device)
    plan: list[tuple[float, UnitResult | Unit]] = []
    for b in cfg.beta_grid:
        for k, s in enumerate(cfg.seeds(cfg.beta_seeds)):
            if abs(b - cfg.beta) < 1e-12 and k < len(main.get("SEMAX", [])):
                plan.append((float(b), main["SEMAX"][k]))
            else:
                plan.append((float(b), Unit(f"beta/{b:g}/seed{s}{_tuned_suffix(tuned)}", compute,
                                            ("SEMAX", cfg, data, s), resources, {"beta": b, "tuned": tuned})))
    run = run_units(store, [u for _, u in plan if isinstance(u, Unit)], executor=executor, address=address,
                    progress=cfg.progress)
    out: dict[float, list[UnitResult]] = {}
    for b, item in plan:
        out.setdefault(b, []).append(run.results[item.key] if isinstance(item, Unit) else item)
    return out


def _tuned_suffix(params: Mapping[str, Any] | None) -> str:
    """Unit-key suffix naming tuned parameters (units of the config's values keep the plain key)."""
    if not params:
        return ""
    return "/tuned-" + hashlib.sha256(to_json(params).encode()).hexdigest()[:10]


def tune_models(cfg: SemaxConfig, models: Sequence[str] | None = None, n_trials: int | None = None) -> dict[str, Any]:
    """``xrec tune semax``: one Optuna study per model on the validation split, the same budget for every model.

    The paper's six models (search spaces beside their classes) and the two learned simple
    baselines are tuned on the fit part of the temporal split and scored by the validation RMSE
    (the latest 10% of the training period; the test period is never read). A neural trial reports
    its validation RMSE every epoch, so hopeless trials are pruned. :func:`run_all` then uses each
    study's best parameters.
    """
    from ...models.registry import entry
    from ...tuning import convergence_check, tune

    data = load_data(cfg)
    c = data.corpus
    n_trials = n_trials or cfg.tune_trials
    out = {}
    check = convergence_check(cfg.tune_converged_only)
    for name in models or (*PAPER_MODELS, *TUNED_BASELINES):
        if name not in (*PAPER_MODELS, *TUNED_BASELINES):
            raise ValueError(f"Unknown model {name!r}; valid: {', '.join((*PAPER_MODELS, *TUNED_BASELINES))}")
        key = TUNED_NAMES.get(name, name)

        def objective(params: dict[str, Any], report: Callable[[int, float], None], name: str = name, key: str = key) -> float:
            if name == "NCF":
                model, curve = fit_ncf(cfg, data.fit, data.valid, cfg.seed, params, on_epoch=report)
                check({"training": curve.as_dict()})
                return curve.best_value
            if name in TUNED_BASELINES:
                model = build(key, **params, **({"seed": cfg.seed} if key == "BiasedMF" else {}))
                model.fit(rating_triples(data.fit), rating_triples(data.valid))
                return rmse(data.valid.ratings, model.predict(c.users[data.valid_idx], c.items[data.valid_idx]))
            model = build_model(name, cfg, cfg.seed, tuned=params).fit(data.fit, data.valid, on_epoch=report)
            check({"training": model.curve_.as_dict()})
            return model.curve_.best_value

        log.info("tuning %s on %s (%d trials)", name, cfg.dataset, n_trials)
        out[name] = tune(PAPER_KEY, cfg.dataset, key, objective, space=entry(key).search_space, direction="minimize",
                         n_trials=n_trials, seed=cfg.seed, results_dir=cfg.results_dir or None, scale=cfg.scale)
    return out


def run_all(cfg: SemaxConfig, data: SemaxData | None = None, compute: Callable[..., UnitResult] = train_eval,
            executor: str = "serial", address: str | None = None) -> SemaxRun:
    """Data, every model x seed, the simple baselines and the beta sweep, resumable through the unit store.

    ``executor`` / ``address``: where the units run (:func:`xrec_core.executor.run_units`). A unit
    writes the SEMAX checkpoint of the first seed into the unit store's folder: on a cluster that
    folder must be on a file system the workers share for the attention view to find it.
    """
    data = load_data(cfg) if data is None else data
    store = semax_store(cfg)
    results, crashed = run_models(cfg, data, store, compute, executor=executor, address=address)
    sweep = None
    if cfg.beta_grid and "SEMAX" in results:
        sweep = run_beta_sweep(cfg, data, store, results, compute, executor=executor, address=address)
    return SemaxRun(data=data, results=results, sweep=sweep, crashed=crashed)


def load_trained_semax(cfg: SemaxConfig, data: SemaxData) -> Any:
    """The SEMAX model of the first seed, rebuilt from its checkpoint (for the attention view)."""
    import torch

    from ...device import pick_device

    path = semax_store(cfg).root / f"SEMAX__seed{cfg.seed}.pt"
    if not path.exists():
        raise FileNotFoundError(f"No SEMAX checkpoint at {path}; run run_all(cfg) first.")
    model = build_model("SEMAX", cfg, cfg.seed, tuned=tuned_params(cfg, "SEMAX"))
    model.device_ = pick_device(cfg.device)
    model.mu_ = float(data.corpus.ratings[data.fit_idx].mean())
    model.net = model._build(data.corpus).to(model.device_)
    model.net.load_state_dict(torch.load(path, map_location=model.device_))
    return model
