"""The SEMAX chapter's configuration: every knob of the protocol and of the models, one dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ...config import ConfigError, ExperimentConfig

PAPER_KEY = "semax"
#: the six models of Table 3, in the paper's order (SEMA is the paper's ablation of SEMAX).
PAPER_MODELS = ("NCF", "DeepCoNN", "TransNets", "TransNets-Ext", "SEMA", "SEMAX")
#: simple baselines every rating chapter carries (issue 9); "Global mean" is also the health floor.
SIMPLE_BASELINES = ("Global mean", "User+item bias", "Biased MF (tuned)")
METRICS = ("MAE", "RMSE")
#: config fields that choose *which* units run or how a run looks, not what a unit computes: they are
#: left out of the unit fingerprint, so adding a model or a seed never throws finished units away.
SELECTION_FIELDS = ("models", "simple_baselines", "n_seeds", "beta_grid", "beta_seeds", "count_bins", "tune_trials",
                    "n_threads", "device", "progress")


@dataclass
class SemaxConfig(ExperimentConfig):
    """SEMAX protocol and model settings; defaults are the paper's where its text gives them.

    The paper's Table 2 (hyper-parameters) is an image missing from our text: ``dim`` (one value
    for D1..D5, as the paper says), ``lr``, ``batch_size``, ``lam`` and the history/review lengths
    are our choices. ``beta = 0.4`` is the paper's best loss weight (Fig. 6).

    Scales: ``smoke`` is a CI-sized run; ``full`` is the protocol on the data here with models
    sized for a CPU (dimension 32 instead of 64, reviews cut to 30 words and histories to 6
    reviews) trained until the validation RMSE stops improving under a 60-epoch cap, TransNets with
    a squared rating error (its L1 error fits the median, 5 stars on these skewed data: see
    :mod:`xrec_core.models.semax.transnets`); ``paper`` keeps the paper's sizes and TransNets' L1.
    """

    dataset: str = "amazon2014-instruments"
    # protocol
    train_frac: float = 0.8
    valid_frac: float = 0.1
    min_word_freq: int = 10
    max_reviews: int = 0  # keep only the earliest N reviews (0 = all); smoke scale only
    max_review_len: int = 300  # words per review kept
    max_history: int = 50  # most recent earlier reviews per user/item kept
    n_seeds: int = 5  # the units the claims are paired over
    models: tuple[str, ...] = PAPER_MODELS
    simple_baselines: bool = True
    # SEMA / SEMAX
    dim: int = 64
    beta: float = 0.4
    lam: float = 1.0
    beta_grid: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    beta_seeds: int = 5  # seeds per beta of Figure 6 (the claims pair them with the main run's seeds)
    # DeepCoNN / TransNets (their papers' values)
    cnn_emb_dim: int = 64
    cnn_filters: int = 100
    cnn_window: int = 3
    cnn_latent: int = 50
    transform_layers: int = 2
    fm_k: int = 8
    dropout: float = 0.5
    transnets_rating_loss: str = "l1"  # Algorithm 1 of TransNets; "mse" fits the mean that RMSE rewards
    # NCF (NeuMF, He et al. 2017)
    ncf_factors: int = 8
    ncf_layers: tuple[int, ...] = (32, 16, 8)
    ncf_weight_decay: float = 0.0
    # training (every neural model: Adam, early stopping on the validation RMSE)
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 64
    max_epochs: int = 100
    patience: int = 5
    # simple baselines: biased MF without a tuning study (`xrec tune semax` tunes k and reg)
    mf_k: int = 10
    mf_reg: float = 10.0
    # Figures 4-5: bins of the number of training ratings of users/items (left edges)
    count_bins: tuple[int, ...] = (0, 1, 3, 6, 11, 21, 51)
    tune_trials: int = 20
    progress: bool = False

    SCALES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": dict(max_reviews=1500, max_review_len=20, max_history=4, n_seeds=2, dim=8, cnn_emb_dim=8,
                      cnn_filters=8, cnn_latent=8, fm_k=4, ncf_factors=4, ncf_layers=(16, 8, 4), batch_size=128,
                      max_epochs=3, patience=1, beta_grid=(0.2, 0.4, 0.8), beta_seeds=2, mf_k=5,
                      mf_reg=10.0, count_bins=(0, 1, 3, 6), transnets_rating_loss="mse", tune_trials=2),
        "full": dict(max_review_len=30, max_history=6, n_seeds=3, dim=32, cnn_emb_dim=32, cnn_filters=32,
                     cnn_latent=32, batch_size=128, max_epochs=60, patience=3, lr=1e-3, weight_decay=1e-6,
                     ncf_weight_decay=1e-5, beta_grid=(0.1, 0.3, 0.4, 0.5, 0.7, 0.9), beta_seeds=3,
                     transnets_rating_loss="mse"),
        "paper": {},
    }
    #: what a dataset must hold for this chapter (any review file with these fields works)
    REQUIRES: ClassVar[tuple[str, ...]] = ("rating", "text", "time")

    def validate(self) -> None:
        super().validate()
        if not 0.0 < self.train_frac < 1.0 or not 0.0 < self.valid_frac < 1.0:
            raise ConfigError(f"train_frac and valid_frac must lie in (0, 1), got {self.train_frac}, {self.valid_frac}")
        unknown = sorted(set(self.models) - set(PAPER_MODELS))
        if unknown:
            raise ConfigError(f"Unknown model(s) {', '.join(unknown)}; valid: {', '.join(PAPER_MODELS)}")
        if not 0.0 <= self.beta <= 1.0 or any(not 0.0 <= b <= 1.0 for b in self.beta_grid):
            raise ConfigError("beta and beta_grid values must lie in [0, 1]")
        if self.n_seeds < 1 or self.dim < 1 or self.max_review_len < 1 or self.max_epochs < 1 or self.patience < 1:
            raise ConfigError("n_seeds, dim, max_review_len, max_epochs and patience must be >= 1")
        if self.transnets_rating_loss not in ("l1", "mse"):
            raise ConfigError(f"transnets_rating_loss must be 'l1' or 'mse', got {self.transnets_rating_loss!r}")

    @property
    def paper_dataset(self) -> str:
        """The paper's dataset this run stands in for (its Amazon or its Yelp set)."""
        return "Yelp" if self.dataset.startswith("yelp") else "Amazon"

    def seeds(self, n: int | None = None) -> list[int]:
        """The seeds of the run's units: ``seed, seed + 1, ...`` (``n_seeds`` of them unless ``n``)."""
        return [self.seed + k for k in range(self.n_seeds if n is None else n)]
