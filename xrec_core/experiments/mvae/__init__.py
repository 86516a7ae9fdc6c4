"""MVAE chapter (paper 003): multi-scale distribution deep VAEs for explanation generation.

* :mod:`.config` -- :class:`MVAEConfig`, its scales, the chapter's model and metric names;
* :mod:`.data` -- explanation datasets from reviews or PETER's files, splits, vocabulary, encoding;
* :mod:`.protocol` -- model building from the registry, one unit per (split, model), metrics, Fig. 4;
* :mod:`.report` -- :func:`record_run` writes metric rows, health checks, learning curves, claims,
  tables and figures into the record; helpers the notebook displays;
* :mod:`.tuning` -- :func:`tune_models` (``xrec tune mvae``) and the stored best parameters;
* :mod:`.diagnostics` -- probes of PETER and the MVAE variants while they train (why MVAE writes one
  sentence), recorded by ``benchmarks/diag_mvae.py`` under ``results/diag_mvae/``.
"""

from .config import (EXPLAIN_METRICS, FIG6_MODELS, MVAE_MODELS, NEURAL_BASELINES, NEURAL_MODELS, PAPER_DATASET, RETRIEVAL,
                     RETRIEVALS, USER_RETRIEVAL, TABLE2_METRICS, TABLE3_METRICS, MVAEConfig)
from .data import ExplanationData, explanation_stats, load_explanations
from .protocol import run_all, run_split, unit_store
from .report import (claims_table, committed_health, committed_mvae_diagnostic, describe_models, explanation_browser, health_table, plot_committed,
                     record_run, reduction_notes, results_table, simple_baseline_summary)
from .tuning import record_tuning, stored_best_params, tune_models

__all__ = ["EXPLAIN_METRICS", "FIG6_MODELS", "MVAE_MODELS", "NEURAL_BASELINES", "NEURAL_MODELS", "PAPER_DATASET", "RETRIEVAL",
           "RETRIEVALS", "USER_RETRIEVAL", "TABLE2_METRICS", "TABLE3_METRICS", "MVAEConfig", "ExplanationData", "explanation_stats", "load_explanations",
           "run_all", "run_split", "unit_store", "claims_table", "committed_health", "committed_mvae_diagnostic", "describe_models", "explanation_browser",
           "health_table", "plot_committed", "record_run", "reduction_notes", "results_table", "simple_baseline_summary",
           "record_tuning", "stored_best_params", "tune_models"]
