"""MVAE chapter (paper 003): config, training protocol, evaluation, tables and figures.

Protocol (Sec. 4): explanation datasets of (user, item, rating, explanation); ``n_splits``
random 8:1:1 splits, results averaged; vocabulary of the ``vocab_size`` most frequent training
words; every generator is trained with teacher forcing on the training part, early-stopped on
the validation NLL, and generates greedily up to ``max_words`` tokens for the test part. Metrics
(:mod:`xrec_core.metrics.text`): BLEU-1/4 (sacrebleu), ROUGE-1/L P/R/F (rouge-score), METEOR 1.5
(Java jar of pycocoevalcap), plus PETER's FMR/FCR/DIV/USR. One unit of work = one split x one
model, stored by :class:`~xrec_core.records.UnitStore`, so an interrupted run resumes.

Training choices the paper leaves open (stated in the chapter): every neural model is trained
with AdamW, linear warm-up over ``warmup_steps``, gradient clipping ``clip`` and the paper's
learning-rate rule (multiply by 0.8 when the validation loss falls by less than 2% in an epoch);
the baselines use their published architectures at ``baseline_d`` hidden size instead of their
own optimisers (PETER's SGD with lr 1.0 and NETE's Adam) so that all models see the same
training budget.
"""

from __future__ import annotations

import copy
import logging
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from ..config import ConfigError, ExperimentConfig
from ..metrics import text as tm
from ..models.explain import NETE, NRT, PETER, Att2Seq, ExplanationBatch, ExplanationGenerator, ItemMedoidRetrieval, TextSpec
from ..models.explain.common import strip_special
from ..models.mvae import MVAE, PlainVAE
from ..metrics.significance import higher_across_folds
from ..records import Claim, MetricRow, UnitStore, atomic_torch_save
from .mvae_data import ExplanationData, build_explanations, from_peter, random_split

log = logging.getLogger(__name__)

#: our datasets -> the paper dataset each is compared with (Table 2).
PAPER_DATASET = {
    "peter-yelp": "peter-yelp", "peter-amazon-movies": "peter-amazon-movies", "peter-tripadvisor": "peter-tripadvisor",
    "amazon2014-instruments": "peter-amazon-movies", "amazon2018-allbeauty": "peter-amazon-movies",
    "amazon2018-giftcards": "peter-amazon-movies",
}
#: the paper's sparse filter (Sec. 4.1): fewer than 15 reviews on Yelp/TripAdvisor, 20 on Amazon Movies & TV.
PETER_SPARSE = {"peter-yelp": 15, "peter-tripadvisor": 15, "peter-amazon-movies": 20}
NEURAL_BASELINES = ("NRT", "Att2Seq", "NETE", "PETER")
#: MVAE-NoKL is the Table 3 ablation of Sec. 4.3 (the beta term of TKL removed); MVAE-NoKL-MSE is the model
#: Sec. 4.8 calls MVAE-NoKL in Fig. 6 (z = mu_r, TKL replaced by the MSE between mu_r and mu_p).
MVAE_MODELS = {"MVAE": "mvae", "MVAE-NoKL": "nokl", "MVAE-NoMLF": "nomlf", "MVAE-NoRN": "norn", "MVAE-NoKL-MSE": "nokl_mse"}
#: the MVAE variants drawn in Fig. 6 (Sec. 4.8's NoKL is MVAE-NoKL-MSE)
FIG6_MODELS = ("MVAE", "MVAE-NoKL-MSE", "MVAE-NoKL", "MVAE-NoRN")
RETRIEVAL = "Retrieval (item medoid)"
TABLE2_METRICS = ("BLEU-1", "BLEU-4", "ROUGE-1-P", "ROUGE-1-R", "ROUGE-1-F", "ROUGE-L-P", "ROUGE-L-R", "ROUGE-L-F", "METEOR")
TABLE3_METRICS = ("BLEU-1", "BLEU-4", "ROUGE-1-F", "ROUGE-L-F", "METEOR")
EXPLAIN_METRICS = ("FMR", "FCR", "DIV", "USR")
#: config fields that do not change the result of a unit (left out of the UnitStore fingerprint): runtime
#: settings, and the number of splits and the list of models, since every unit is one (split, model).
RUNTIME_FIELDS = ("device", "n_threads", "n_splits", "models")


@dataclass
class MVAEConfig(ExperimentConfig):
    """MVAE chapter settings; defaults are the paper's (Sec. 4.4), ``SCALES`` shrink them for CPU."""

    dataset: str = "amazon2014-instruments"
    # data
    n_splits: int = 5
    vocab_size: int = 20000
    max_words: int = 20
    sparse_max_reviews: int = 15
    min_feature_count: int = 10
    n_features: int = 500
    max_samples: int = 0
    # models to train (comma-separated)
    models: str = "NRT,Att2Seq,NETE,PETER,MVAE,MVAE-NoKL,MVAE-NoMLF,MVAE-NoRN,MVAE-NoKL-MSE"
    # MVAE (Sec. 4.4)
    d_model: int = 768
    n_layers: int = 2
    n_heads: int = 12
    n_rd: int = 4
    n_rs: int = 3
    beta: float = 1e-3
    anneal_k: float = 0.0025
    anneal_a0: int = -1
    dropout: float = 0.3
    # baselines: hidden size (0 = each model's published default)
    baseline_d: int = 0
    # optimisation
    lr: float = 1e-4
    warmup_steps: int = 5000
    clip: float = 5.0
    lr_decay: float = 0.8
    decay_threshold: float = 0.98
    batch_size: int = 128
    epochs: int = 50
    patience: int = 3
    # evaluation
    meteor_max_pairs: int = 0
    n_examples: int = 6
    # Fig. 4 (plain VAE on duplicated users)
    fig4_epochs: int = 20
    fig4_bins: int = 80

    SCALES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"n_splits": 1, "max_samples": 700, "vocab_size": 2000, "d_model": 48, "n_heads": 2, "n_rd": 2, "n_rs": 3,
                  "baseline_d": 48, "lr": 3e-3, "warmup_steps": 10, "epochs": 4, "patience": 1, "batch_size": 64,
                  "meteor_max_pairs": 40, "n_examples": 3, "fig4_epochs": 2, "fig4_bins": 10, "anneal_k": 0.05},
        "full": {"n_splits": 5, "vocab_size": 20000, "d_model": 96, "n_heads": 4, "n_rd": 1, "n_rs": 3,
                 "baseline_d": 96, "lr": 2e-3, "warmup_steps": 100, "epochs": 6, "patience": 2, "batch_size": 64,
                 "fig4_epochs": 8, "fig4_bins": 40, "anneal_k": 0.01},
        "paper": {},
    }
    REQUIRES: ClassVar[tuple[str, ...]] = ("rating", "text")

    def validate(self) -> None:
        super().validate()
        unknown = [m for m in self.model_list if m not in NEURAL_BASELINES and m not in MVAE_MODELS]
        if unknown:
            raise ConfigError(f"Unknown model(s) {unknown}; valid: {', '.join(NEURAL_BASELINES + tuple(MVAE_MODELS))}")
        if (2 * self.d_model) % 3 or (2 * self.d_model) % 2 ** (self.n_rd + self.n_rs):
            raise ConfigError(f"2*d_model={2 * self.d_model} must be divisible by 3 and by 2**(n_rd+n_rs)")
        if self.n_splits < 1 or self.epochs < 1:
            raise ConfigError("n_splits and epochs must be >= 1")

    @property
    def model_list(self) -> list[str]:
        return [m.strip() for m in self.models.split(",") if m.strip()]


# ============================================================================ data
def load_explanations(cfg: MVAEConfig) -> tuple[ExplanationData, list[Path]]:
    """The explanation dataset of ``cfg.dataset`` and the files it was read from."""
    from .. import data as xdata

    data_dir = cfg.data_dir or None
    if cfg.dataset.startswith("peter-"):
        loaded = [xdata.load_peter(cfg.dataset, data_dir=data_dir, split=k + 1) for k in range(cfg.n_splits)]
        sparse = PETER_SPARSE[cfg.dataset] if cfg.sparse_max_reviews else 0
        exp = from_peter(loaded[0][0], max_words=cfg.max_words, splits=[index for _, index in loaded], sparse_max_reviews=sparse)
    else:
        reviews = xdata.load_reviews(cfg.dataset, data_dir=data_dir)
        exp = build_explanations(reviews, max_words=cfg.max_words, sparse_max_reviews=cfg.sparse_max_reviews,
                                 min_feature_count=cfg.min_feature_count, n_features=cfg.n_features)
    if cfg.max_samples and len(exp) > cfg.max_samples:
        # the samples of the most active items (then users), so that a small subset still splits
        item_n = exp.df["item_idx"].map(exp.df["item_idx"].value_counts())
        user_n = exp.df["user_idx"].map(exp.df["user_idx"].value_counts())
        order = np.lexsort((np.arange(len(exp)), -user_n.to_numpy(), -item_n.to_numpy()))
        exp = from_rows(exp, np.sort(order[: cfg.max_samples]))
    return exp, list(xdata.dataset_files(cfg.dataset, data_dir=data_dir))


def from_rows(exp: ExplanationData, rows: np.ndarray) -> ExplanationData:
    """A subset of samples with users/items re-indexed."""
    from .mvae_data import _finalise

    df = exp.df.iloc[rows][["user", "item", "rating", "explanation", "tokens", "feature"]]
    return _finalise(df, exp.features, exp.source)


class Vocab:
    """Word <-> id map of the ``size`` most frequent training words plus ``<PAD> <UNK> <BOS> <EOS>``.

    Thin adapter over :class:`xrec_core.data.text.Vocabulary` giving the ids the models need.
    """

    def __init__(self, token_lists: Sequence[Sequence[str]], size: int) -> None:
        from ..data.text import Vocabulary

        self.vocab = Vocabulary.build(token_lists, min_freq=1, max_size=size)
        pad, bos, eos = (self._special(t) for t in ("<PAD>", "<BOS>", "<EOS>"))
        self.spec = TextSpec(vocab_size=len(self.vocab), pad_id=pad, bos_id=bos, eos_id=eos)

    def _special(self, token: str) -> int:
        ids = list(self.vocab.encode([token]))
        if len(ids) != 1:
            raise ValueError(f"the vocabulary does not encode {token!r} as one id")
        return int(ids[0])

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return list(self.vocab.encode(list(tokens)))

    def decode(self, ids: Sequence[int]) -> list[str]:
        return list(self.vocab.decode(strip_special(list(ids), self.spec)))


@dataclass
class EncodedSplit:
    """Tensors of one part (train/valid/test) of a split."""

    user: torch.Tensor
    item: torch.Tensor
    rating: torch.Tensor
    sentiment: torch.Tensor
    feature: torch.Tensor
    seq: torch.Tensor  # (N, max_words + 2)
    rows: np.ndarray   # row indices into the dataset
    pad_id: int = 0

    def __len__(self) -> int:
        return len(self.rows)

    def batches(self, batch_size: int, shuffle: bool = False, seed: int = 0) -> Iterator[ExplanationBatch]:
        order = np.random.default_rng(seed).permutation(len(self)) if shuffle else np.arange(len(self))
        for s in range(0, len(order), batch_size):
            idx = torch.as_tensor(order[s:s + batch_size])
            seq = self.seq[idx]
            seq = seq[:, : int((seq != self.pad_id).sum(1).max())]  # trim padding columns
            yield ExplanationBatch(self.user[idx], self.item[idx], self.rating[idx], self.sentiment[idx], self.feature[idx], seq)


def encode_part(exp: ExplanationData, rows: np.ndarray, vocab: Vocab, max_words: int) -> EncodedSplit:
    df = exp.df.iloc[rows]
    spec = vocab.spec
    seq = torch.full((len(df), max_words + 2), spec.pad_id, dtype=torch.long)
    for k, toks in enumerate(df["tokens"]):
        ids = [spec.bos_id, *vocab.encode(toks[:max_words]), spec.eos_id]
        seq[k, : len(ids)] = torch.tensor(ids)
    feat = torch.tensor([vocab.encode([f])[0] for f in df["feature"]], dtype=torch.long)
    part = EncodedSplit(torch.tensor(df["user_idx"].to_numpy()), torch.tensor(df["item_idx"].to_numpy()),
                        torch.tensor(df["rating"].to_numpy(), dtype=torch.float32),
                        torch.tensor(df["sentiment"].to_numpy()), feat, seq, np.asarray(rows), spec.pad_id)
    return part


# ============================================================================ models and training
def build_model(name: str, n_users: int, n_items: int, spec: TextSpec, cfg: MVAEConfig, total_steps: int) -> ExplanationGenerator:
    """A generator by its table name, sized by ``cfg``."""
    d = cfg.baseline_d
    max_len = cfg.max_words + 2
    if name == "NRT":
        return NRT(n_users, n_items, spec, **({"d_emb": d, "d_hidden": d} if d else {}))
    if name == "Att2Seq":
        return Att2Seq(n_users, n_items, spec, **({"d_emb": d, "d_hidden": d} if d else {}))
    if name == "NETE":
        return NETE(n_users, n_items, spec, **({"d_emb": d, "d_hidden": d} if d else {}))
    if name == "PETER":
        return PETER(n_users, n_items, spec, max_len=max_len, **({"d_model": d, "d_ff": 4 * d} if d else {}))
    if name in MVAE_MODELS:
        # a0: half the steps NoKL needs to converge (Sec. 4.4); without that pilot run we take half the budget
        a0 = cfg.anneal_a0 if cfg.anneal_a0 >= 0 else total_steps / 2
        return MVAE(n_users, n_items, spec, d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads, n_rd=cfg.n_rd,
                    n_rs=cfg.n_rs, beta=cfg.beta, anneal_k=cfg.anneal_k, anneal_a0=a0, dropout=cfg.dropout,
                    max_len=max_len, variant=MVAE_MODELS[name])
    raise ConfigError(f"Unknown model {name!r}")


@torch.no_grad()
def evaluate_loss(model: ExplanationGenerator, part: EncodedSplit, batch_size: int, device: torch.device) -> float:
    """Mean NLL per token on ``part`` in evaluation mode (test-phase architecture for MVAE)."""
    model.eval()
    tot, n = 0.0, 0
    for batch in part.batches(batch_size):
        batch = batch.to(device)
        n_tok = int((batch.seq[:, 1:] != model.spec.pad_id).sum())
        tot += float(model.loss(batch)["nll"]) * n_tok
        n += n_tok
    return tot / max(n, 1)


def train_model(model: ExplanationGenerator, train: EncodedSplit, valid: EncodedSplit, cfg: MVAEConfig,
                device: torch.device, seed: int, desc: str = "", progress: bool = False) -> dict[str, list[float]]:
    """Teacher-forced training with warm-up, clipping, the paper's lr decay and early stopping.

    Returns per-epoch ``train_loss`` (the objective), ``train_nll`` and ``valid_nll`` (per token);
    the model is left with the weights of its best validation epoch.
    """
    from ..progress import tqdm

    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    lr_now = cfg.lr
    step = 0
    best, best_state, bad = math.inf, None, 0
    hist: dict[str, list[float]] = {"train_loss": [], "train_nll": [], "valid_nll": [], "lr": []}
    prev_valid = None
    for epoch in range(cfg.epochs):
        model.train()
        s_loss = s_nll = 0.0
        n_b = 0
        for batch in tqdm(list(train.batches(cfg.batch_size, shuffle=True, seed=seed * 1000 + epoch)),
                          desc=f"{desc} epoch {epoch + 1}", leave=False, disable=not progress):
            model.on_step(step)
            for group in opt.param_groups:
                group["lr"] = lr_now * min(1.0, (step + 1) / max(cfg.warmup_steps, 1))
            out = model.loss(batch.to(device))
            opt.zero_grad()
            out["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            step += 1
            s_loss += float(out["loss"].detach())
            s_nll += float(out["nll"].detach())
            n_b += 1
        v = evaluate_loss(model, valid, cfg.batch_size, device)
        hist["train_loss"].append(s_loss / n_b)
        hist["train_nll"].append(s_nll / n_b)
        hist["valid_nll"].append(v)
        hist["lr"].append(lr_now)
        log.info("%s epoch %d: train loss %.4f nll %.4f, valid nll %.4f", desc, epoch + 1, s_loss / n_b, s_nll / n_b, v)
        if prev_valid is not None and v / prev_valid > cfg.decay_threshold:
            lr_now *= cfg.lr_decay  # Sec. 4.4: decrease ratio of the validation loss > 0.98
        prev_valid = v
        if v < best:
            best, best_state, bad = v, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return hist


@torch.no_grad()
def generate(model: ExplanationGenerator, part: EncodedSplit, vocab: Vocab, cfg: MVAEConfig, device: torch.device) -> list[list[str]]:
    model.eval()
    out = []
    for batch in part.batches(cfg.batch_size):
        ids = model.generate(batch.to(device), cfg.max_words).cpu().tolist()
        out.extend(vocab.decode(row) for row in ids)
    return out


# ============================================================================ one split
def run_split(exp: ExplanationData, split: int, cfg: MVAEConfig, store: UnitStore, device: torch.device,
              ckpt_dir: Path | None = None) -> dict[str, Any]:
    """Train and evaluate every model on split ``split``; one UnitStore unit per model.

    Returns ``{"split", "test_rows", "references", "models": {name: {"hypotheses", "history", "metrics"}}}``.
    """
    from ..device import set_seed

    parts = exp.fixed_splits[split] if exp.fixed_splits else random_split(exp, seed=cfg.seed + split)
    vocab = Vocab(exp.df["tokens"].iloc[parts["train"]].tolist(), cfg.vocab_size)
    enc = {k: encode_part(exp, v, vocab, cfg.max_words) for k, v in parts.items()}
    refs = [list(t[: cfg.max_words]) for t in exp.df["tokens"].iloc[parts["test"]]]
    total_steps = cfg.epochs * math.ceil(len(enc["train"]) / cfg.batch_size)
    results: dict[str, Any] = {}

    def neural(name: str) -> dict[str, Any]:
        set_seed(cfg.seed + split)
        model = build_model(name, exp.n_users, exp.n_items, vocab.spec, cfg, total_steps)
        hist = train_model(model, enc["train"], enc["valid"], cfg, device, seed=cfg.seed + split, desc=f"split {split} {name}")
        if ckpt_dir is not None:
            atomic_torch_save(model.state_dict(), ckpt_dir / f"split{split}__{name}.pt")
        return {"hypotheses": generate(model, enc["test"], vocab, cfg, device), "history": hist,
                "n_params": sum(p.numel() for p in model.parameters())}

    def retrieval() -> dict[str, Any]:
        tr = exp.df.iloc[parts["train"]]
        te = exp.df.iloc[parts["test"]]
        r = ItemMedoidRetrieval().fit(tr["item_idx"].tolist(), tr["sentiment"].tolist(), tr["tokens"].tolist())
        return {"hypotheses": [h[: cfg.max_words] for h in r.predict(te["item_idx"].tolist(), te["sentiment"].tolist())],
                "history": {}, "n_params": 0}

    from ..progress import tqdm

    for name in tqdm([RETRIEVAL, *cfg.model_list], desc=f"split {split}: models"):
        fn = retrieval if name == RETRIEVAL else (lambda name=name: neural(name))
        results[name] = store.run(f"split{split}/{name}", fn)
    # METEOR once for all models of the split (one JVM), then every other metric per model
    names = list(results)
    pairs_idx = np.arange(len(refs))
    if cfg.meteor_max_pairs and len(refs) > cfg.meteor_max_pairs:
        pairs_idx = np.sort(np.random.default_rng(cfg.seed + split).choice(len(refs), cfg.meteor_max_pairs, replace=False))
    met = store.run(f"split{split}/METEOR/{'+'.join(names)}", lambda: tm.meteor_segments(
        [refs[k] for _ in names for k in pairs_idx], [results[n]["hypotheses"][k] for n in names for k in pairs_idx]).tolist())
    met = np.asarray(met).reshape(len(names), len(pairs_idx))
    feats = exp.df["feature"].iloc[parts["test"]].tolist()
    for j, name in enumerate(names):
        hyps = [h if h else ["."] for h in results[name]["hypotheses"]]
        m = tm.text_metrics(refs, hyps, with_meteor=False)
        m["METEOR"] = float(met[j].mean())
        m.update(tm.explainability_metrics(hyps, feats, exp.features))
        results[name]["metrics"] = m
    return {"split": split, "test_rows": parts["test"].tolist(), "train_rows": parts["train"].tolist(),
            "n_valid": len(parts["valid"]), "vocab_size": vocab.spec.vocab_size, "references": refs, "models": results}


# ============================================================================ Fig. 4
def duplicate_half(exp: ExplanationData, seed: int) -> tuple[ExplanationData, np.ndarray]:
    """Sec. 4.5: sample half of the examples and add a copy of them with fresh user and item ids.

    Returns the new dataset (sampled rows, then their copies) and the sampled row indices.
    """
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(exp.df), len(exp.df) // 2, replace=False))
    half = exp.df.iloc[rows][["user", "item", "rating", "explanation", "tokens", "feature"]]
    copy_ = half.copy()
    copy_["user"] = "copy::" + copy_["user"].astype(str)
    copy_["item"] = "copy::" + copy_["item"].astype(str)
    from .mvae_data import _finalise

    return _finalise(pd.concat([half, copy_], ignore_index=True), exp.features, exp.source), rows


def normalized_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity mapped to [0, 1] by ``(cos + 1) / 2``."""
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
    return (cos + 1.0) / 2.0


def binned_mean(x: np.ndarray, y: np.ndarray, n_bins: int) -> dict[str, list[float]]:
    """Sort by ``x``, cut into ``n_bins`` equal-count bins; mean x and mean/95%-CI of y per bin."""
    order = np.argsort(x, kind="stable")
    xs, ys = [], []
    lo, hi = [], []
    for chunk in np.array_split(order, min(n_bins, len(order))):
        xs.append(float(x[chunk].mean()))
        m = float(y[chunk].mean())
        half = 1.96 * float(y[chunk].std(ddof=1) / np.sqrt(len(chunk))) if len(chunk) > 1 else 0.0
        ys.append(m)
        lo.append(m - half)
        hi.append(m + half)
    return {"x": xs, "y": ys, "lo": lo, "hi": hi}


def figure4(exp: ExplanationData, cfg: MVAEConfig, device: torch.device) -> dict[str, Any]:
    """Train the plain VAE on the duplicated data; cosine of the two copies of each user vs. its training count."""
    from ..device import set_seed

    set_seed(cfg.seed)
    dup, _ = duplicate_half(exp, cfg.seed)
    vocab = Vocab(dup.df["tokens"].tolist(), cfg.vocab_size)
    all_rows = np.arange(len(dup.df))
    enc = encode_part(dup, all_rows, vocab, cfg.max_words)
    d = cfg.baseline_d or 64
    model = PlainVAE(dup.n_users, dup.n_items, vocab.spec, d_emb=d, d_hidden=2 * d)
    fig_cfg = copy.copy(cfg)
    fig_cfg.epochs, fig_cfg.patience = cfg.fig4_epochs, cfg.fig4_epochs + 1
    hist = train_model(model, enc, enc, fig_cfg, device, seed=cfg.seed, desc="Fig. 4 VAE")
    users = dup.df.drop_duplicates("user_idx").set_index("user")["user_idx"]
    counts = dup.df["user"].value_counts()
    orig = [u for u in users.index if not str(u).startswith("copy::")]
    emb = model.user_emb.weight.detach().cpu().numpy()
    a = emb[users.loc[orig].to_numpy()]
    b = emb[users.loc[["copy::" + str(u) for u in orig]].to_numpy()]
    sim = normalized_cosine(a, b)
    n = counts.loc[orig].to_numpy().astype(float)
    binned = binned_mean(n, sim, cfg.fig4_bins)
    from scipy.stats import spearmanr

    rho = float(spearmanr(n, sim).statistic)
    return {"binned": binned, "spearman": rho, "n_users": len(orig), "history": hist}


# ============================================================================ aggregation
def metric_rows(splits: Sequence[dict[str, Any]], dataset: str) -> list[MetricRow]:
    """Table 2 (all models), Table 3 (MVAE variants) and the feature metrics as MetricRows over splits."""
    target = PAPER_DATASET.get(dataset)  # None for data the paper has no counterpart of (a user's own)
    rows: list[MetricRow] = []
    names = list(splits[0]["models"])
    for name in names:
        vals = {m: [s["models"][name]["metrics"][m] for s in splits] for m in splits[0]["models"][name]["metrics"]}
        in_paper = name in NEURAL_BASELINES or name == "MVAE"
        for m in TABLE2_METRICS:
            rows.append(MetricRow.from_values("Table 2", dataset, name, m, vals[m], compare_to=target if in_paper else None,
                                              higher_is_better=True))
        if name in MVAE_MODELS:
            t3_target = "peter-yelp" if name in ("MVAE", "MVAE-NoKL", "MVAE-NoMLF") else None
            for m in TABLE3_METRICS:
                rows.append(MetricRow.from_values("Table 3", dataset, name, m, vals[m], compare_to=t3_target, higher_is_better=True))
        for m in EXPLAIN_METRICS:
            rows.append(MetricRow.from_values("Explainability (PETER metrics)", dataset, name, m, vals[m],
                                              higher_is_better=m != "DIV"))
    return rows


def results_table(rows: Sequence[MetricRow], table: str) -> pd.DataFrame:
    """Wide view: one row per model, one column per metric (mean over splits)."""
    df = pd.DataFrame([{"model": r.model, "metric": r.metric, "value": r.value} for r in rows if r.table == table])
    if df.empty:
        return df
    order = list(dict.fromkeys(df["model"]))
    wide = df.pivot(index="model", columns="metric", values="value").loc[order]
    return wide[[c for c in dict.fromkeys(df["metric"])]]


def per_user_curves(exp: ExplanationData, splits: Sequence[dict[str, Any]], models: Sequence[str] = ("PETER", "MVAE"),
                    max_count: int = 10) -> dict[str, dict[str, list[float]]]:
    """Fig. 5: sentence BLEU-1 and ROUGE-L F1 (mean, 95% CI) vs. the user's number of training samples.

    Counts above ``max_count`` are pooled into one bin (``max_count`` means "at least").
    """
    out: dict[str, dict[str, list[float]]] = {}
    for name in models:
        if name not in splits[0]["models"]:
            continue
        cnt_all, b1_all, rl_all = [], [], []
        for s in splits:
            users = exp.df["user_idx"].to_numpy()
            train_count = Counter(users[s["train_rows"]])
            test_users = users[s["test_rows"]]
            hyps = [h if h else ["."] for h in s["models"][name]["hypotheses"]]
            cnt_all.append(np.minimum([train_count[u] for u in test_users], max_count))
            b1_all.append(tm.bleu1_per_pair(s["references"], hyps))
            rl_all.append(tm.rouge_per_pair(s["references"], hyps, "rougeL"))
        cnt, b1, rl = map(np.concatenate, (cnt_all, b1_all, rl_all))
        for metric, y in (("BLEU-1", b1), ("ROUGE-L", rl)):
            xs, ys, lo, hi, ns = [], [], [], [], []
            for c in np.unique(cnt):
                v = y[cnt == c]
                half = 1.96 * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0
                xs.append(int(c))
                ys.append(float(v.mean()))
                lo.append(float(v.mean() - half))
                hi.append(float(v.mean() + half))
                ns.append(int(len(v)))
            out[f"{metric}/{name}"] = {"x": xs, "y": ys, "lo": lo, "hi": hi, "n": ns}
    return out


def examples_table(exp: ExplanationData, split: dict[str, Any], n: int, seed: int) -> list[dict[str, Any]]:
    """Table 4: ``n`` random test pairs with the reference and every model's explanation."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(split["test_rows"]), min(n, len(split["test_rows"])), replace=False))
    rows = []
    for k in idx:
        r = exp.df.iloc[split["test_rows"][k]]
        row = {"user": str(r["user"]), "item": str(r["item"]), "rating": float(r["rating"]), "feature": r["feature"],
               "Reference": " ".join(split["references"][k])}
        row.update({name: " ".join(m["hypotheses"][k]) for name, m in split["models"].items()})
        rows.append(row)
    return rows


def claims(rows: Sequence[MetricRow], curves: dict[str, Any], splits: Sequence[dict[str, Any]], fig4: dict[str, Any] | None,
           dataset: str) -> list[Claim]:
    """The paper's claims checked on our numbers.

    "MVAE beats X" on a metric holds only when MVAE's mean over the splits is higher and a paired
    t-test over the same splits gives p < 0.05 (:func:`xrec_core.metrics.significance.higher_across_folds`);
    the loss claims of Fig. 6 are tested the same way on the per-split losses.
    """
    per_split = {(r.table, r.model, r.metric): r.values or [r.value] for r in rows}
    out = []
    models = {r.model for r in rows}

    def not_better(table: str, metrics: Sequence[str], rivals: Sequence[str]) -> list[str]:
        """Where MVAE is not significantly better than a rival, with the test's evidence."""
        misses = []
        for rival in rivals:
            for m in metrics:
                ours, theirs = per_split[(table, "MVAE", m)], per_split[(table, rival, m)]
                better, why = higher_across_folds(ours, theirs, unit="split")
                if not better:
                    misses.append(f"{m} vs {rival}: {np.mean(ours):.3g} vs {np.mean(theirs):.3g} ({why})")
        return misses

    def verdict(misses: list[str], all_good: str) -> tuple[bool, str]:
        return not misses, ("not significantly better on: " + "; ".join(misses)) if misses else all_good

    base = [b for b in NEURAL_BASELINES if b in models]
    if "MVAE" in models and base:
        holds, evidence = verdict(not_better("Table 2", TABLE2_METRICS, base), "MVAE significantly better on all metrics")
        out.append(Claim("MVAE outperforms NRT, Att2Seq, NETE and PETER on every Table 2 metric", "Table 2 / Sec. 4.6",
                         holds, evidence, dataset))
        holds, evidence = verdict(not_better("Table 2", TABLE2_METRICS, [RETRIEVAL]), "MVAE significantly better on all metrics")
        out.append(Claim("MVAE beats the simple item-medoid retrieval baseline (issue 9)", "issue 9", holds, evidence, dataset))
    for abl in ("MVAE-NoKL", "MVAE-NoMLF"):
        if "MVAE" in models and abl in models:
            holds, evidence = verdict(not_better("Table 3", TABLE3_METRICS, [abl]), "significantly better on all")
            out.append(Claim(f"MVAE outperforms {abl} on every Table 3 metric", "Table 3 / Sec. 4.7", holds, evidence, dataset))

    # per split: the last-epoch training NLL and the best validation NLL of each Fig. 6 model
    fig6 = [n for n in FIG6_MODELS if n in models]
    train_nll = {n: [s["models"][n]["history"]["train_nll"][-1] for s in splits] for n in fig6}
    valid_nll = {n: [min(s["models"][n]["history"]["valid_nll"]) for s in splits] for n in fig6}

    # Fig. 6's NoKL is the Sec. 4.8 model (MVAE-NoKL-MSE); the Table 3 NoKL is checked only when it is absent
    nokl6 = "MVAE-NoKL-MSE" if "MVAE-NoKL-MSE" in models else "MVAE-NoKL"
    if splits and "MVAE" in models and nokl6 in models:
        lower_train, why_train = higher_across_folds(train_nll["MVAE"], train_nll[nokl6], unit="split")
        higher_valid, why_valid = higher_across_folds(valid_nll[nokl6], valid_nll["MVAE"], unit="split")
        out.append(Claim(f"{nokl6} has lower training loss but higher validation loss than MVAE", "Fig. 6 / Sec. 4.8",
                         lower_train and higher_valid,
                         f"last-epoch train NLL {nokl6} {np.mean(train_nll[nokl6]):.3f} vs MVAE "
                         f"{np.mean(train_nll['MVAE']):.3f} ({why_train}); best valid NLL {nokl6} "
                         f"{np.mean(valid_nll[nokl6]):.3f} vs MVAE {np.mean(valid_nll['MVAE']):.3f} ({why_valid})", dataset))
    if splits and "MVAE" in models and "MVAE-NoRN" in models:
        lower, why = higher_across_folds(valid_nll["MVAE-NoRN"], valid_nll["MVAE"], unit="split")
        out.append(Claim("MVAE reaches a lower validation loss than MVAE-NoRN", "Fig. 6 / Sec. 4.8", lower,
                         f"best valid NLL MVAE {np.mean(valid_nll['MVAE']):.3f} vs NoRN "
                         f"{np.mean(valid_nll['MVAE-NoRN']):.3f} ({why})", dataset))
    for metric in ("BLEU-1", "ROUGE-L"):
        p, m = curves.get(f"{metric}/PETER"), curves.get(f"{metric}/MVAE")
        if p and m and len(p["x"]) > 1:
            gain_low, gain_high = m["y"][0] - p["y"][0], m["y"][-1] - p["y"][-1]
            out.append(Claim(f"MVAE's {metric} gain over PETER is larger for users with fewer training samples",
                             "Fig. 5 / Sec. 4.6", bool(gain_low > gain_high),
                             f"gain at {p['x'][0]} training samples: {gain_low:.2f}; at >= {p['x'][-1]}: {gain_high:.2f}", dataset))
    if fig4 is not None:
        out.append(Claim("The two copies of a user become more similar the more training examples the user has",
                         "Fig. 4 / Sec. 4.5", bool(fig4["spearman"] > 0),
                         f"Spearman rho(count, normalized cosine) = {fig4['spearman']:.3f} over {fig4['n_users']} users", dataset))
    return out


# ============================================================================ run plumbing, figures, widget
def reduction_notes(cfg: MVAEConfig) -> list[str]:
    """Plain statements of where a run is smaller than its scale's preset (stored in the record's notes)."""
    preset = MVAEConfig.from_scale(cfg.scale, dataset=cfg.dataset, data_dir=cfg.data_dir)
    notes = []
    if cfg.n_splits < preset.n_splits:
        notes.append(f"{cfg.n_splits} of the {cfg.scale} preset's {preset.n_splits} random splits (the paper averages 5); "
                     "chosen to fit the CPU time of one session")
    missing = [m for m in preset.model_list if m not in cfg.model_list]
    if missing:
        notes.append(f"models left out of this run: {', '.join(missing)}")
    return notes


def unit_store(cfg: MVAEConfig) -> UnitStore:
    """Resumable units under ``results/mvae/units/<scale>__<dataset>`` (see :func:`xrec_core.paths.units_root`)."""
    from ..paths import units_root

    science = {k: v for k, v in cfg.as_dict().items() if k not in RUNTIME_FIELDS}
    return UnitStore(units_root(cfg.results_dir or None, "mvae", cfg.scale, cfg.dataset), science)


def figure_dir(recorder) -> Path:
    path = recorder.results_dir / f"{recorder.name}_figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def plot_fig4(curve: dict[str, Any], path: Path | None = None):
    """Fig. 4: normalized cosine similarity of the two copies of a user vs. its number of training examples."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.fill_between(curve["x"], curve["lo"], curve["hi"], alpha=0.25)
    ax.plot(curve["x"], curve["y"], marker=".")
    ax.set_xlabel("training examples of the user (bin mean)")
    ax.set_ylabel("normalized cosine similarity")
    ax.set_title(f"Fig. 4: two copies of each user (Spearman {curve.get('spearman', float('nan')):.2f})")
    if path is not None:
        from ..plots import save_figure

        save_figure(fig, path)
    return fig


def plot_fig5(curves: dict[str, Any], path: Path | None = None):
    """Fig. 5: BLEU-1 and ROUGE-L (mean, 95% CI) vs. the user's training count, PETER vs MVAE."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, metric in zip(axes, ("BLEU-1", "ROUGE-L")):
        for key, c in curves.items():
            if key.startswith(metric + "/"):
                ax.errorbar(c["x"], c["y"], yerr=[np.subtract(c["y"], c["lo"]), np.subtract(c["hi"], c["y"])], capsize=3,
                            marker="o", label=key.split("/", 1)[1])
        ax.set_xlabel("training samples of the user (last bin: at least)")
        ax.set_ylabel(f"{metric} (%)")
        ax.legend(frameon=False)
    fig.suptitle("Fig. 5: quality vs. training samples of the user")
    fig.tight_layout()
    if path is not None:
        from ..plots import save_figure

        save_figure(fig, path)
    return fig


def plot_fig6(curves: dict[str, Any], path: Path | None = None):
    """Fig. 6: training and validation loss (NLL per token) of MVAE and its Fig. 6 variants (``FIG6_MODELS``)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for name, c in curves.items():
        # the Table 3 NoKL tracks MVAE almost exactly (beta = 0.001): dashed so that both lines stay visible
        style = {"linestyle": "--", "marker": "x"} if name == "MVAE-NoKL" else {"marker": "o"}
        axes[0].plot(c["epoch"], c["train_nll"], label=name, **style)
        axes[1].plot(c["epoch"], c["valid_nll"], label=name, **style)
    for ax, title in zip(axes, ("(a) training loss", "(b) validation loss")):
        ax.set_xlabel("epoch")
        ax.set_ylabel("NLL per token")
        ax.set_title(title)
        ax.legend(frameon=False)
    fig.tight_layout()
    if path is not None:
        from ..plots import save_figure

        save_figure(fig, path)
    return fig


def record_run(recorder, exp: ExplanationData, splits: Sequence[dict[str, Any]], fig4: dict[str, Any] | None,
               cfg: MVAEConfig) -> dict[str, Any]:
    """Add metric rows, curves, Table 4 examples, claims and figure files of a run to ``recorder``.

    Returns the figures (matplotlib) for display.
    """
    import matplotlib.pyplot as plt

    rows = metric_rows(splits, cfg.dataset)
    recorder.add_metrics(rows)
    curves5 = per_user_curves(exp, splits)
    for key, c in curves5.items():
        recorder.add_curve(f"Fig. 5 {key}", c)
    curves6 = {}
    for name in FIG6_MODELS:
        if name in splits[0]["models"]:
            h = splits[0]["models"][name]["history"]
            curves6[name] = {"epoch": list(range(1, len(h["train_nll"]) + 1)), "train_nll": h["train_nll"], "valid_nll": h["valid_nll"],
                             "train_loss": h["train_loss"]}
            recorder.add_curve(f"Fig. 6 {name}", curves6[name])
    for name, m in splits[0]["models"].items():
        if m["history"]:
            recorder.add_curve(f"history {name}", m["history"])
    recorder.add_table("Table 4 examples", examples_table(exp, splits[0], cfg.n_examples, cfg.seed))
    recorder.add_table("Explanation browser", examples_table(exp, splits[0], 60, cfg.seed + 1))
    recorder.add_table("splits", [{"split": s["split"], "train": len(s["train_rows"]), "valid": s["n_valid"],
                                   "test": len(s["test_rows"]), "vocabulary": s["vocab_size"]} for s in splits])
    recorder.add_table("model sizes", [{"model": n, "parameters": m["n_params"]} for n, m in splits[0]["models"].items()])
    figs = {}
    out = figure_dir(recorder)
    if fig4 is not None:
        c4 = {**fig4["binned"], "spearman": fig4["spearman"], "n_users": fig4["n_users"]}
        recorder.add_curve("Fig. 4", c4)
        figs["Fig. 4"] = plot_fig4(c4, out / "fig4_noise.png")
        recorder.add_artifact("Fig. 4", out / "fig4_noise.png")
    if curves5:
        figs["Fig. 5"] = plot_fig5(curves5, out / "fig5_per_user.png")
        recorder.add_artifact("Fig. 5", out / "fig5_per_user.png")
    if curves6:
        figs["Fig. 6"] = plot_fig6(curves6, out / "fig6_losses.png")
        recorder.add_artifact("Fig. 6", out / "fig6_losses.png")
    for c in claims(rows, curves5, splits, fig4, cfg.dataset):
        recorder.add_claim(c)
    plt.close("all")
    return figs


def explanation_browser(examples: Sequence[dict[str, Any]]):
    """Interactive view (ipywidgets): pick a test (user, item) pair, see every model's explanation.

    Returns the widget, or ``None`` when ipywidgets is unavailable; callers display the static
    table of the same examples as well, so the page renders without a kernel.
    """
    try:
        import ipywidgets as widgets
    except ImportError:
        return None
    from IPython.display import display

    options = [(f"{r['user']} | {r['item']} | rating {r['rating']:g}", k) for k, r in enumerate(examples)]
    pick = widgets.Dropdown(options=options, description="user | item")
    out = widgets.Output()

    def show(change=None):
        r = examples[pick.value]
        out.clear_output()
        with out:
            display(pd.DataFrame({"explanation": {k: v for k, v in r.items() if k not in ("user", "item", "rating")}}))

    pick.observe(show, names="value")
    show()
    return widgets.VBox([pick, out])


def describe_models(cfg: MVAEConfig) -> pd.DataFrame:
    """What each model of the chapter is, at this config's sizes."""
    d = cfg.baseline_d or "published default"
    rows = [
        {"model": RETRIEVAL, "kind": "retrieval (issue 9)", "sizes": "-", "inputs": "item, sentiment"},
        {"model": "NRT", "kind": "GRU decoder + rating MLP", "sizes": f"emb/hidden {d}", "inputs": "user, item"},
        {"model": "Att2Seq", "kind": "attribute encoder + 2-layer LSTM with attention", "sizes": f"emb/hidden {d}", "inputs": "user, item, sentiment"},
        {"model": "NETE", "kind": "GFRU (context GRU + feature GRU, gated)", "sizes": f"emb/hidden {d}", "inputs": "user, item, sentiment, ground-truth feature"},
        {"model": "PETER", "kind": "Transformer with PETER mask, context + rating tasks", "sizes": f"d_model {d}", "inputs": "user, item"},
    ]
    mv = (f"d_model {cfg.d_model}, {cfg.n_layers}+{cfg.n_layers} layers, n_rd=n_pd={cfg.n_rd}, n_rs=n_ps={cfg.n_rs}, "
          f"latents {[2 * cfg.d_model // 2 ** (cfg.n_rd + j + 1) for j in range(cfg.n_rs)]}")
    for name, what in (("MVAE", "recognition + prior + reconstruction networks, MLF with TKL"),
                       ("MVAE-NoKL", "MVAE without the beta KL(q || N(0, I)) term"),
                       ("MVAE-NoMLF", "MVAE with the smallest-scale distribution only"),
                       ("MVAE-NoRN", "MVAE trained with the test-phase architecture (no recognition network)"),
                       ("MVAE-NoKL-MSE", "Sec. 4.8's NoKL (Fig. 6): z = mu_rec, TKL replaced by MSE(mu_rec, mu_prior)")):
        rows.append({"model": name, "kind": what, "sizes": mv, "inputs": "user, item, sentiment"})
    return pd.DataFrame([r for r in rows if r["model"] == RETRIEVAL or r["model"] in cfg.model_list])


def plot_committed(records: Sequence[dict[str, Any]]) -> list:
    """Redraw Figs. 4-6 from the ``curves`` of committed run records (one set per dataset)."""
    figs = []
    for rec in records:
        curves = rec.get("curves", {})
        if "Fig. 4" in curves:
            f = plot_fig4(curves["Fig. 4"])
            f.axes[0].set_title(f"Fig. 4 ({rec['dataset']}, {rec['scale']})")
            figs.append(f)
        c5 = {k[len("Fig. 5 "):]: v for k, v in curves.items() if k.startswith("Fig. 5 ")}
        if c5:
            f = plot_fig5(c5)
            f.suptitle(f"Fig. 5 ({rec['dataset']}, {rec['scale']})")
            figs.append(f)
        c6 = {k[len("Fig. 6 "):]: v for k, v in curves.items() if k.startswith("Fig. 6 ")}
        if c6:
            f = plot_fig6(c6)
            f.suptitle(f"Fig. 6 ({rec['dataset']}, {rec['scale']})", y=1.02)
            figs.append(f)
    return figs


def simple_baseline_summary(records: Sequence[dict[str, Any]]) -> str:
    """A plain-language sentence per record: where MVAE (and PETER) lose to the retrieval baseline (issue 9)."""
    out = []
    for rec in records:
        val = {(m["model"], m["metric"]): m["value"] for m in rec["metrics"] if m["table"] == "Table 2"}
        if (RETRIEVAL, "BLEU-1") not in val:
            continue
        parts = []
        for model in ("MVAE", "PETER"):
            if (model, "BLEU-1") not in val:
                continue
            lose = [m for m in TABLE2_METRICS if val[(model, m)] < val[(RETRIEVAL, m)]]
            parts.append(f"{model} is below the retrieval baseline on {len(lose)} of {len(TABLE2_METRICS)} metrics"
                         + (f" ({', '.join(lose)})" if lose else ""))
        best = "BLEU-1"  # the headline metric of Table 2
        leader = max((k[0] for k in val if k[1] == best), key=lambda name: val[(name, best)])
        out.append(f"**{rec['dataset']}** ({rec['scale']}): " + "; ".join(parts)
                   + f". Best {best}: {leader} ({val[(leader, best)]:.2f}).")
    return "\n\n".join(out) if out else "No record with the retrieval baseline yet."
