"""NAR / CAR / CNR (paper 004): whitebox, graybox and blackbox explainable ranking (Sec. 5).

``config`` (:class:`NARConfig`, the model lists), ``data`` (mentions, Eq. 1 features, the split
and its validation carve), ``protocol`` (one resumable unit per (seed, model)) and ``report``
(:func:`record_results`: tables, health checks, claims and figures into the record).
"""

from .config import (EXPLAIN_METRICS, EXPLAINERS, EXTRA_MODELS, LEARNED_MODELS, PAPER_DATASET, PAPER_FEATURES,
                     PAPER_MODELS, PAPER_TABLE2, RANK_METRICS, NARConfig, bpr_params, ranker_params, reduction_notes)
from .data import NARData, explain_sample, prepare, reviews_with_mentions, synthetic_data, table2, validation_split
from .protocol import (candidate_pools, decode_matrix, encode_matrix, explanation_metrics, fit_learned, ranking_metrics,
                       run_model, run_protocol, search_space, tune_models, tuned_params)
from .report import (claims_table, committed_mostpop_multiples, explanation_browser, explanation_table,
                     explanation_vectors, health_summary, pearson_heatmap, plot_curves, plot_pearson, plot_tsne,
                     ranking_table, record_results, top_words, tsne_embedding)

__all__ = [
    "EXPLAIN_METRICS", "EXPLAINERS", "EXTRA_MODELS", "LEARNED_MODELS", "PAPER_DATASET", "PAPER_FEATURES", "PAPER_MODELS",
    "PAPER_TABLE2", "RANK_METRICS", "NARConfig", "NARData", "bpr_params", "claims_table", "decode_matrix",
    "encode_matrix", "explain_sample", "explanation_browser", "explanation_metrics", "explanation_table",
    "explanation_vectors", "health_summary", "pearson_heatmap", "plot_curves", "plot_pearson", "plot_tsne", "prepare",
    "ranker_params", "ranking_metrics", "ranking_table", "record_results", "reduction_notes", "reviews_with_mentions",
    "run_model", "run_protocol", "synthetic_data", "table2", "candidate_pools", "top_words", "tsne_embedding", "validation_split",
    "fit_learned", "search_space", "tune_models", "tuned_params", "committed_mostpop_multiples",
]
