"""MVAE chapter settings: the config dataclass, its scales, and the chapter's names and tables.

Every hyper-parameter of every generator of the chapter is a field here; the protocol builds the
models from these values (:func:`xrec_core.experiments.mvae.protocol.model_params`), so no
constructor carries a default the config cannot reach.

Scales
------
``paper``
    The paper's settings (Sec. 4.4: d = 768, 4 + 3 Blocks, beta 0.001, warm-up 5,000 steps) and the
    baselines' published sizes; a GPU run.
``full``
    The paper's protocol (5 random 8:1:1 splits, 20,000 words) on the data here with models that
    converge on a CPU: hidden size 96 for every generator (MVAE: 1 + 3 Blocks, so the smallest
    latent still has the paper's 12 dimensions). Every model trains until its validation NLL has
    not improved for ``patience`` = 5 epochs, under a cap of 200 epochs. The earlier cap of 60 was
    reached on Gift_Cards (about 8 updates an epoch) by NRT, NETE, PETER and MVAE while still
    improving; the record's convergence check fails a model when that happens.
``smoke``
    Seconds-to-minutes check of the whole pipeline on 700 samples and one split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ...config import ConfigError, ExperimentConfig
from ...models.explain.retrieval import RETRIEVAL, RETRIEVALS, USER_RETRIEVAL

#: our datasets -> the paper dataset each is compared with (Table 2).
PAPER_DATASET = {
    "peter-yelp": "peter-yelp", "peter-amazon-movies": "peter-amazon-movies", "peter-tripadvisor": "peter-tripadvisor",
    "amazon2014-instruments": "peter-amazon-movies", "amazon2018-allbeauty": "peter-amazon-movies",
    "amazon2018-giftcards": "peter-amazon-movies",
}
#: the paper's sparse filter (Sec. 4.1): fewer than 15 reviews on Yelp/TripAdvisor, 20 on Amazon Movies & TV.
PETER_SPARSE = {"peter-yelp": 15, "peter-tripadvisor": 15, "peter-amazon-movies": 20}
#: the baselines of Table 2
NEURAL_BASELINES = ("NRT", "Att2Seq", "NETE", "PETER")
#: MVAE and its ablations (Table 3: NoKL, NoMLF; Fig. 6: NoKL, NoRN), by their table names
MVAE_MODELS = ("MVAE", "MVAE-NoKL", "MVAE-NoMLF", "MVAE-NoRN")
#: every learned generator of the chapter
NEURAL_MODELS = NEURAL_BASELINES + MVAE_MODELS
#: the MVAE variants drawn in Fig. 6 (Sec. 4.8)
FIG6_MODELS = ("MVAE", "MVAE-NoKL", "MVAE-NoRN")
TABLE2_METRICS = ("BLEU-1", "BLEU-4", "ROUGE-1-P", "ROUGE-1-R", "ROUGE-1-F", "ROUGE-L-P", "ROUGE-L-R", "ROUGE-L-F", "METEOR")
TABLE3_METRICS = ("BLEU-1", "BLEU-4", "ROUGE-1-F", "ROUGE-L-F", "METEOR")
EXPLAIN_METRICS = ("FMR", "FCR", "DIV", "USR")
#: config fields that do not change the result of a unit (left out of the unit fingerprint): runtime
#: settings, and the number of splits and the list of models, since every unit is one (split, model).
RUNTIME_FIELDS = ("device", "n_threads", "n_splits", "models", "tune_trials")

__all__ = ["MVAEConfig", "PAPER_DATASET", "PETER_SPARSE", "NEURAL_BASELINES", "MVAE_MODELS", "NEURAL_MODELS", "FIG6_MODELS",
           "RETRIEVAL", "RETRIEVALS", "USER_RETRIEVAL", "TABLE2_METRICS", "TABLE3_METRICS", "EXPLAIN_METRICS", "RUNTIME_FIELDS"]


@dataclass
class MVAEConfig(ExperimentConfig):
    """MVAE chapter settings; defaults are the paper's (Sec. 4.4) and the baselines' published code."""

    dataset: str = "amazon2014-instruments"
    # data
    n_splits: int = 5
    vocab_size: int = 20000
    max_words: int = 20
    sparse_max_reviews: int = 15
    min_feature_count: int = 10
    n_features: int = 500
    max_samples: int = 0
    # models to train (comma-separated; MVAE-NoKL runs before MVAE: its convergence sets MVAE's a0)
    models: str = "NRT,Att2Seq,NETE,PETER,MVAE-NoKL,MVAE,MVAE-NoMLF,MVAE-NoRN"
    # MVAE (Sec. 4.4)
    d_model: int = 768
    n_layers: int = 2
    n_heads: int = 12
    n_rd: int = 4
    n_rs: int = 3
    beta: float = 1e-3
    anneal_k: float = 0.0025
    anneal_a0: int = -1  # steps; -1: half the steps MVAE-NoKL of the same split took to its best epoch (Sec. 4.4)
    dropout: float = 0.3
    block_dropout: float = 0.0
    # baselines: their published code's sizes
    nrt_d_emb: int = 300
    nrt_d_hidden: int = 400
    att2seq_d_emb: int = 64
    att2seq_d_hidden: int = 512
    att2seq_layers: int = 2
    nete_d_emb: int = 200
    nete_d_hidden: int = 256
    peter_d_model: int = 512
    peter_n_heads: int = 2
    peter_d_ff: int = 2048
    peter_layers: int = 2
    baseline_dropout: float = 0.2
    rating_reg: float = 0.1
    context_reg: float = 1.0
    # optimisation (every generator: AdamW, warm-up, clipping, Sec. 4.4's lr decay, early stopping)
    lr: float = 1e-4
    warmup_steps: int = 5000
    clip: float = 5.0
    lr_decay: float = 0.8
    decay_threshold: float = 0.98
    batch_size: int = 128
    max_epochs: int = 100
    patience: int = 5
    # tuning: trials per model (the same budget for MVAE and every baseline)
    tune_trials: int = 20
    # evaluation
    meteor_max_pairs: int = 0
    n_examples: int = 6
    # Fig. 4 (plain VAE on duplicated users)
    fig4_d: int = 64
    fig4_latent: int = 16
    fig4_bins: int = 80

    SCALES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"n_splits": 1, "max_samples": 700, "vocab_size": 2000, "d_model": 48, "n_heads": 2, "n_rd": 2, "n_rs": 3,
                  "nrt_d_emb": 48, "nrt_d_hidden": 48, "att2seq_d_emb": 48, "att2seq_d_hidden": 48, "nete_d_emb": 48,
                  "nete_d_hidden": 48, "peter_d_model": 48, "peter_d_ff": 192, "lr": 3e-3, "warmup_steps": 10,
                  "max_epochs": 4, "patience": 2, "batch_size": 64, "tune_trials": 2, "meteor_max_pairs": 40,
                  "n_examples": 3, "fig4_d": 32, "fig4_latent": 8, "fig4_bins": 10, "anneal_k": 0.05},
        "full": {"n_splits": 5, "vocab_size": 20000, "d_model": 96, "n_heads": 4, "n_rd": 1, "n_rs": 3,
                 "nrt_d_emb": 96, "nrt_d_hidden": 96, "att2seq_d_emb": 96, "att2seq_d_hidden": 96, "nete_d_emb": 96,
                 "nete_d_hidden": 96, "peter_d_model": 96, "peter_d_ff": 384, "lr": 2e-3, "warmup_steps": 100,
                 "max_epochs": 200, "patience": 5, "batch_size": 64, "tune_trials": 12, "fig4_bins": 40, "anneal_k": 0.01},
        "paper": {},
    }
    #: what a dataset must hold: ratings and review text (explanations are extracted from the text)
    REQUIRES: ClassVar[tuple[str, ...]] = ("rating", "text")

    def validate(self) -> None:
        super().validate()
        unknown = [m for m in self.model_list if m not in NEURAL_MODELS]
        if unknown:
            raise ConfigError(f"Unknown model(s) {unknown}; valid: {', '.join(NEURAL_MODELS)}")
        if (2 * self.d_model) % 3 or (2 * self.d_model) % 2 ** (self.n_rd + self.n_rs):
            raise ConfigError(f"2*d_model={2 * self.d_model} must be divisible by 3 and by 2**(n_rd+n_rs)")
        if self.n_splits < 1 or self.max_epochs < 1 or self.patience < 1:
            raise ConfigError("n_splits, max_epochs and patience must be >= 1")

    @property
    def model_list(self) -> list[str]:
        return [m.strip() for m in self.models.split(",") if m.strip()]
