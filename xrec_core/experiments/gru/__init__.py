"""Chapter "Ask the GRU" (Bansal, Belanger & McCallum, RecSys 2016): config, data, protocol and report.

The protocol of Sec. 4.1: warm start (per-user 5-fold over likes) and cold start (5-fold over
items); GRU, Embed, CTR and their ``-MTL`` variants (Table 1) trained per fold, with MostPop and
BPR on the warm-start folds (issue 9). Recall@M (M = 1..100, Figure 3), HR@10 (Sec. 4.2) and
cold-start tag Recall@50 are averaged per user (per article for tags).

``config`` holds :class:`GRUConfig`; ``data`` loads items, likes and tags and builds the folds;
``protocol`` runs the resumable units; ``report`` writes metrics, health checks, learning curves
and claims into the run record (:func:`record_results`) and draws the figures.
"""

from .config import (BASELINES, CTR_MODELS, HR_METRIC, METRIC, M_MAX, MODELS, NEURAL, ORDER_SENSITIVE, SCENARIOS,
                     TAG_METRIC, GRUConfig, make_config)
from .data import Fold, GRUData, data_statistics, fold_summary, from_citeulike, from_mter, load_data, make_folds, testable_models
from .protocol import (evaluate_topk, fit_text_model, pretrained_embeddings, run_protocol, tag_recall, unit_fingerprint)
from .report import (baseline_summary, claims_frame, committed_ctr_parity, committed_scale_evidence, health_frame, model_summary, plot_figure3, plot_learning_curves,
                     plot_saliency, record_results, saliency_html, scale_evidence_markdown, show_committed, show_saliency, table1)
from .tuning import record_tuning, stored_best_params, tune_models

__all__ = [
    "BASELINES", "CTR_MODELS", "HR_METRIC", "METRIC", "M_MAX", "MODELS", "NEURAL", "ORDER_SENSITIVE", "SCENARIOS",
    "TAG_METRIC", "GRUConfig", "make_config", "Fold", "GRUData", "data_statistics", "fold_summary", "from_citeulike",
    "from_mter", "load_data", "make_folds", "testable_models", "evaluate_topk", "fit_text_model", "pretrained_embeddings",
    "run_protocol", "tag_recall", "unit_fingerprint", "baseline_summary", "claims_frame", "health_frame", "model_summary",
    "plot_figure3", "plot_learning_curves", "plot_saliency", "record_results", "saliency_html", "show_committed", "show_saliency",
    "table1", "record_tuning", "stored_best_params", "tune_models",
]
