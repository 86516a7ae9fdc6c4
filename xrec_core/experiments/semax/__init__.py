"""SEMAX chapter (paper 001): config, temporal protocol, Table 3, Figures 4-6 and the paper's claims.

``config`` (:class:`SemaxConfig`), ``data`` (temporal split, corpus), ``protocol`` (units of work:
every model x seed, simple baselines, beta sweep) and ``report`` (the record: tables, health,
claims, figures). The notebook ``notebooks/semax.ipynb`` calls only what this module exports.
"""

from .config import METRICS, PAPER_KEY, PAPER_MODELS, SIMPLE_BASELINES, SemaxConfig
from .data import SemaxData, data_statistics, load_data, prepare_reviews
from .protocol import (SemaxRun, build_model, fit_ncf, fit_simple_baselines, load_trained_semax, model_params, run_all,
                       run_beta_sweep, run_models, semax_store, train_eval, tune_models, tuned_params)
from .report import (attention_table, attention_view, bin_labels, binned_errors, claims_frame, committed_global_mean_floor,
                     decide_claims, describe_models, figure6_curve, figure45_curves, health_checks, health_frame,
                     make_figures, plot_beta, plot_bins, record_results, show_committed, table3)

__all__ = [
    "METRICS", "PAPER_KEY", "PAPER_MODELS", "SIMPLE_BASELINES", "SemaxConfig", "SemaxData", "data_statistics",
    "load_data", "prepare_reviews", "SemaxRun", "build_model", "fit_ncf", "fit_simple_baselines", "load_trained_semax",
    "run_all", "run_beta_sweep", "run_models", "semax_store", "train_eval", "tune_models", "tuned_params", "model_params", "attention_table", "attention_view",
    "bin_labels", "binned_errors", "claims_frame", "committed_global_mean_floor", "decide_claims", "describe_models",
    "figure6_curve", "figure45_curves", "health_checks", "health_frame", "make_figures", "plot_beta", "plot_bins",
    "record_results", "show_committed", "table3",
]
