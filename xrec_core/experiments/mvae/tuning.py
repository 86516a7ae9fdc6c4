"""Hyper-parameter studies of the MVAE chapter (``xrec tune mvae``).

Every generator, MVAE's variants and the four baselines alike, gets the same budget of
``cfg.tune_trials`` Optuna trials over its registry search space (:mod:`xrec_core.models.registry`).
A trial trains on the first split's training part less a validation part of 10% of it (5% or
2.5% when the data is so sparse that 10% cannot keep one training sample of every user and item)
and is scored by the NLL per token on that validation part (carved from training data, never the
split's validation or test part);
the epoch hook prunes hopeless trials. Eq. 11's ``a0`` is the config's value (0 when it asks for
NoKL's convergence, which a single trial does not have). :func:`stored_best_params` gives
:func:`~xrec_core.experiments.mvae.protocol.run_all` the stored best parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...data.splits import random_split
from ...models import registry
from .config import MVAEConfig
from .data import Vocab, encode_part, load_explanations, split_rows
from .protocol import build_generator

PAPER = "mvae"


def tune_models(cfg: MVAEConfig, models: Sequence[str] | None = None, n_trials: int | None = None) -> dict[str, Any]:
    """Run (or continue) the study of each model; ``{model: TuneResult}``."""
    from ...device import set_seed
    from ...tuning import convergence_check, tune

    exp, _ = load_explanations(cfg)
    train_rows = split_rows(exp, 0, cfg.seed)["train"]
    inner = carve_validation(exp.df["user_idx"].to_numpy()[train_rows], exp.df["item_idx"].to_numpy()[train_rows], cfg.seed)
    fit_rows, valid_rows = train_rows[inner["train"]], train_rows[inner["valid"]]
    vocab = Vocab(exp.df["tokens"].iloc[fit_rows].tolist(), cfg.vocab_size)
    fit_part, valid_part = (encode_part(exp, rows, vocab, cfg.max_words) for rows in (fit_rows, valid_rows))
    results = {}
    check = convergence_check(cfg.tune_converged_only)
    for name in models or cfg.model_list:
        def objective(params: dict[str, Any], report, name: str = name) -> float:
            set_seed(cfg.seed)
            model = build_generator(name, exp.n_users, exp.n_items, vocab.spec, cfg, split=0, tuned=params,
                                    anneal_a0=float(max(cfg.anneal_a0, 0)))
            model.fit(fit_part, valid_part, report=report)
            check({"training": model.curve.as_dict()})
            return model.curve.best_value

        results[name] = tune(PAPER, cfg.dataset, name, objective, space=registry.entry(name).search_space, direction="minimize",
                             n_trials=n_trials or cfg.tune_trials, seed=cfg.seed, results_dir=cfg.results_dir or None,
                             scale=cfg.scale)
    return results


def carve_validation(users, items, seed: int) -> dict[str, Any]:
    """:func:`~xrec_core.data.splits.random_split` of training rows into fit/validation parts (10%, else 5%, else 2.5%)."""
    for fraction in (0.1, 0.05, 0.025):
        try:
            return random_split(users, items, seed=seed, ratios=(1.0 - fraction, fraction, 0.0))
        except ValueError:
            continue
    raise ValueError("too few training samples to carve a validation part for tuning")


def stored_best_params(cfg: MVAEConfig) -> dict[str, dict[str, Any]]:
    """``{model: best parameters}`` of the models with a completed study at this scale and dataset."""
    from ...tuning import best_params

    out = {}
    for name in cfg.model_list:
        params = best_params(PAPER, cfg.dataset, name, cfg.results_dir or None, cfg.scale)
        if params:
            out[name] = params
    return out


def record_tuning(recorder, cfg: MVAEConfig, tuned: dict[str, dict[str, Any]]) -> None:
    """Store each tuned model's study summary; say which models ran with the config's values."""
    from ...tuning import tuning_summary

    for name in tuned:
        recorder.add_tuning(name, tuning_summary(PAPER, cfg.dataset, name, cfg.results_dir or None, cfg.scale))
    untuned = [m for m in cfg.model_list if m not in tuned]
    recorder.add_untuned(untuned)
