"""Tuning studies of the chapter: every model gets the same trial budget on the first warm fold's validation split.

``xrec tune gru`` calls :func:`tune_models`; :func:`stored_best_params` gives ``run_protocol`` the
best parameters of the studies that have run (an empty dict before any has, or when
:mod:`xrec_core.tuning` is not installed in this checkout).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...models.gru import topk_from_factors
from ...models.registry import entry
from .config import CTR_MODELS, NEURAL, GRUConfig
from .data import load_data, make_folds, testable_models
from .protocol import _topk_scores, fit_bpr, fit_ctr, fit_text_model, lda_theta, pretrained_embeddings, valid_recall, with_tuned

log = logging.getLogger(__name__)

TUNED = ("BPR",)  # the baselines tuned beside the paper's models (MostPop has nothing to tune)


def tune_models(cfg: GRUConfig, models: Sequence[str] | None = None, n_trials: int | None = None) -> dict[str, Any]:
    """Run one study per model (``cfg.tune_trials`` trials each unless ``n_trials``), maximising validation Recall@50.

    The validation split is the one carved from the first warm-start fold's training likes; the
    neural models report every epoch's value to the study, which may prune the trial.
    """
    from ...tuning import tune

    data = load_data(cfg)
    fold = next(f for f in make_folds(data, cfg) if f.scenario == "warm")
    names = list(models or [*testable_models(cfg, data), *TUNED])
    results = {}
    for name in names:
        def objective(params: dict[str, Any], report, name: str = name) -> float:
            trial_cfg = with_tuned(cfg, name, params)
            if name in NEURAL:
                k = trial_cfg.k_gru if name.startswith("GRU") else trial_cfg.k
                model = fit_text_model(name, fold, data, trial_cfg, pretrained_embeddings(data, trial_cfg, k), on_epoch=report)
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
                             n_trials=n_trials or cfg.tune_trials, seed=cfg.seed)
        log.info("tuned %s on %s", name, cfg.dataset)
    return results


def stored_best_params(cfg: GRUConfig, models: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{model: best parameters}`` of the studies stored for this dataset (models without one are left out)."""
    try:
        from ...tuning import best_params
    except ImportError:
        return {}
    out = {}
    for name in models:
        params = best_params("gru", cfg.dataset, name)
        if params:
            out[name] = dict(params)
    return out
