"""MT chapter (paper 000, Lu, Dong & Smyth, RecSys 2018): "Why I like it: multi-task learning for
recommendation and explanation".

``config`` holds :class:`MTConfig`; ``data`` the corpus, the 10-fold split and each fold's tensors;
``protocol`` trains every model of Tables 2-4 on every fold as resumable units; ``report`` writes
metric rows, health checks, learning curves, claims and figures into the run record (one call,
:func:`record_results`) and builds the tables the notebook shows.
"""

from .config import (DISCRIMINATORS, LM_BASELINES, MT_RATING, MT_TEXT, PAPER_DATASETS, PAPER_KEY, RATING_BASELINES,
                     SIMPLE_BASELINES, MTConfig)
from .data import FoldData, MTCorpus, corpus_from_frame, dataset_table, decode, fold_data, load_corpus
from .protocol import (UnitNotFinished, run_ablation_fold, run_mt_fold, run_protocol, run_rating_baseline_fold,
                       run_simple_baselines_fold, run_text_baseline_fold, tune_lambda, tune_models, unit_config)
from .report import (claims_table, committed_global_mean_floor, describe_models, discriminator_table, examples_table,
                     examples_view, health_table, make_figures, per_fold, plot_figure3, record_results, results_table,
                     where_mt_loses)

__all__ = [
    "DISCRIMINATORS", "LM_BASELINES", "MT_RATING", "MT_TEXT", "PAPER_DATASETS", "PAPER_KEY", "RATING_BASELINES",
    "SIMPLE_BASELINES", "MTConfig", "FoldData", "MTCorpus", "corpus_from_frame", "dataset_table", "decode", "fold_data",
    "load_corpus", "UnitNotFinished", "run_ablation_fold", "run_mt_fold", "run_protocol", "run_rating_baseline_fold",
    "run_simple_baselines_fold", "run_text_baseline_fold", "tune_lambda", "tune_models", "unit_config", "claims_table",
    "committed_global_mean_floor", "describe_models", "discriminator_table", "examples_table", "examples_view",
    "health_table", "make_figures", "per_fold", "plot_figure3", "record_results", "results_table", "where_mt_loses",
]
