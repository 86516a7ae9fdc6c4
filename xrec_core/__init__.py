"""xrec: a reproducibility book for multi-task and explainable recommendation.

The package is deliberately thin: data loading (:mod:`xrec_core.data`), models
(:mod:`xrec_core.models`), metrics (:mod:`xrec_core.metrics`), per-paper experiment
protocols (:mod:`xrec_core.experiments`), plots and run records
(:mod:`xrec_core.records`). Notebooks in ``notebooks/`` import it and hold only
narrative, parameters and calls.
"""

__version__ = "0.1.0"
