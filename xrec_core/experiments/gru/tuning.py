"""Tuning studies of the chapter: every model gets the same trial budget on the first warm fold's validation split.

``xrec tune gru`` calls :func:`tune_models`; :func:`stored_best_params` gives ``run_protocol`` the
best parameters of the studies that have run on this dataset and scale (an empty dict before any
has); :func:`record_tuning` states them in the record.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...models.gru import topk_from_factors
from ...models.registry import entry
from ...records import RunRecorder
from .config import CTR_MODELS, NEURAL, GRUConfig
from .data import GRUData, load_data, make_folds, testable_models
from .protocol import _topk_scores, fit_bpr, fit_ctr, fit_text_model, lda_theta, pretrained_embeddings, valid_recall, with_tuned

log = logging.getLogger(__name__)

TUNED = ("BPR",)  # the baselines tuned beside the paper's models (MostPop has nothing to tune)


def tune_models(cfg: GRUConfig, models: Sequence[str] | None = None, n_trials: int | None = None,
                data: GRUData | None = None) -> dict[str, Any]:
    """Run one study per model (``cfg.tune_trials`` trials each unless ``n_trials``), maximising validation Recall@50.

    The validation split is the one carved from the first warm-start fold's training likes; the
    neural models report every epoch's value to the study, which may prune the trial. ``data``
    defaults to :func:`load_data` of ``cfg``.
    """
    from ...tuning import convergence_check, tune

    data = data or load_data(cfg)
    fold = next(f for f in make_folds(data, cfg) if f.scenario == "warm")
    names = list(models or [*testable_models(cfg, data), *TUNED])
    results = {}
    check = convergence_check(cfg.tune_converged_only)
    for name in names:
        def objective(params: dict[str, Any], report, name: str = name) -> float:
            trial_cfg = with_tuned(cfg, name, params)
            if name in NEURAL:
                k = trial_cfg.k_gru if name.startswith("GRU") else trial_cfg.k
                model = fit_text_model(name, fold, data, trial_cfg, pretrained_embeddings(data, trial_cfg, k), on_epoch=report)
                check({"training": model.curve.as_dict()})
                return model.best_valid_recall
            valid = fold.valid
            if name in CTR_MODELS:
                model = fit_ctr(name, fold, data, trial_cfg, lda_theta(data, trial_cfg))
                top = topk_from_factors(model.user_vectors()[valid.users], model.item_vectors(np.flatnonzero(~fold.known)),
                                        np.zeros(data.n_items), 50, candidates=valid.candidates,
                                        exclude=valid.exclude[valid.users] if valid.exclude is not None else None)
            else:
                model = fit_bpr(fold, trial_cfg)
                top = _topk_scores(model.score, valid.users, valid.exclude[valid.users], 50)
            return valid_recall(top, fold)

        results[name] = tune("gru", cfg.dataset, name, objective, space=entry(name).search_space, direction="maximize",
                             n_trials=n_trials or cfg.tune_trials, seed=cfg.seed, results_dir=cfg.results_dir or None,
                             scale=cfg.scale)
        log.info("tuned %s on %s", name, cfg.dataset)
    return results


def stored_best_params(cfg: GRUConfig, models: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{model: best parameters}`` of the studies stored for this dataset (models without one are left out)."""
    from ...tuning import best_params

    out = {}
    for name in models:
        params = best_params("gru", cfg.dataset, name, results_dir=cfg.results_dir or None, scale=cfg.scale)
        if params:
            out[name] = dict(params)
    return out


def record_tuning(recorder: RunRecorder, cfg: GRUConfig, tuned: dict[str, dict[str, Any]], models: Sequence[str]) -> None:
    """Each tuned model's study summary into the record; a note names the models that ran with the config's values."""
    from ...tuning import tuning_summary

    for name in tuned:
        recorder.add_tuning(name, tuning_summary("gru", cfg.dataset, name, results_dir=cfg.results_dir or None, scale=cfg.scale))
    sizes = [f"{name} K = {tuned[name]['k']}" for name in tuned if "k" in tuned[name] and name != "BPR"]
    if sizes:
        recorder.note("Sizes chosen by the tuning studies (they replace the preset's): " + ", ".join(sizes) + ".")
    untuned = [m for m in models if m not in tuned and m != "MostPop"]
    recorder.add_untuned(untuned)
