"""SEMAX chapter (paper 001): config, temporal protocol, Table 3, Figures 4-6 and the paper's claims.

Protocol (Sec. IV-A): reviews sorted by time; the earliest ``train_frac`` (80%) train, the rest
test. For every rating the user's and the item's earlier reviews (strictly earlier time) form
its histories; the rated review itself is never an input of the recommendation task. Words with
training frequency < ``min_word_freq`` (10) become ``<UNK>``. Metrics: MAE and RMSE.

Our additions, said in the chapter: the latest ``valid_frac`` of the training period is held out
as a validation split (early stopping of every neural model, tuning of the simple baselines),
so every model fits on the same earlier 72% of the reviews; every model is trained with
``n_seeds`` seeds and reported as mean +- standard deviation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..config import ConfigError, ExperimentConfig
from ..metrics.rating import mae, rmse
from ..paths import results_root, units_root
from ..plots import save_figure
from ..records import Claim, MetricRow, RunRecorder, UnitStore, atomic_torch_save

log = logging.getLogger(__name__)

PAPER_KEY = "semax"
#: the six models of Table 3, in the paper's order.
PAPER_MODELS = ("NCF", "DeepCoNN", "TransNets", "TransNets-Ext", "SEMA", "SEMAX")
#: simple baselines every rating chapter carries (issue 9), tuned on the validation split.
SIMPLE_BASELINES = ("Global mean", "User+item bias", "Biased MF (tuned)")
METRICS = ("MAE", "RMSE")


@dataclass
class SemaxConfig(ExperimentConfig):
    """SEMAX protocol and model settings; defaults are the paper's where its text gives them.

    The paper's Table 2 (hyper-parameters) is an image missing from our text: ``dim`` (one value
    for D1..D5, as the paper says), ``lr``, ``batch_size``, ``lam`` and the history/review lengths
    are our choices. ``beta = 0.4`` is the paper's best loss weight (Fig. 6).
    """

    dataset: str = "amazon2014-instruments"
    # protocol
    train_frac: float = 0.8
    valid_frac: float = 0.1
    min_word_freq: int = 10
    max_reviews: int = 0  # keep only the earliest N reviews (0 = all); smoke scale only
    max_review_len: int = 300  # words per review kept
    max_history: int = 50  # most recent earlier reviews per user/item kept
    n_seeds: int = 5
    models: tuple[str, ...] = PAPER_MODELS
    simple_baselines: bool = True
    # SEMA / SEMAX
    dim: int = 64
    beta: float = 0.4
    lam: float = 1.0
    beta_grid: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    beta_seeds: int = 1
    # DeepCoNN / TransNets (their papers' values)
    cnn_emb_dim: int = 64
    cnn_filters: int = 100
    cnn_window: int = 3
    cnn_latent: int = 50
    transform_layers: int = 2
    fm_k: int = 8
    dropout: float = 0.5
    # NCF (NeuMF, He et al. 2017)
    ncf_factors: int = 8
    ncf_layers: tuple[int, ...] = (32, 16, 8)
    # training
    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 20
    patience: int = 2
    # simple baselines: biased MF grid
    mf_factors_grid: tuple[int, ...] = (5, 10, 20, 50)
    mf_reg_grid: tuple[float, ...] = (1.0, 5.0, 10.0, 20.0)
    # Figures 4-5: bins of the number of training ratings of users/items (left edges)
    count_bins: tuple[int, ...] = (0, 1, 3, 6, 11, 21, 51)
    progress: bool = False

    SCALES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": dict(max_reviews=1500, max_review_len=20, max_history=4, n_seeds=2, dim=8, cnn_emb_dim=8,
                      cnn_filters=8, cnn_latent=8, fm_k=4, ncf_factors=4, ncf_layers=(16, 8, 4), batch_size=128,
                      epochs=2, patience=1, beta_grid=(0.2, 0.4, 0.8), mf_factors_grid=(5,), mf_reg_grid=(10.0,),
                      count_bins=(0, 1, 3, 6)),
        "full": dict(max_review_len=30, max_history=6, n_seeds=3, dim=32, cnn_emb_dim=32, cnn_filters=32,
                     cnn_latent=32, batch_size=128, epochs=6, patience=2, lr=2e-3),
        "paper": {},
    }
    REQUIRES: ClassVar[tuple[str, ...]] = ("rating", "text", "time")

    def validate(self) -> None:
        super().validate()
        if not 0.0 < self.train_frac < 1.0 or not 0.0 <= self.valid_frac < 1.0:
            raise ConfigError(f"train_frac must lie in (0, 1) and valid_frac in [0, 1), got {self.train_frac}, {self.valid_frac}")
        unknown = sorted(set(self.models) - set(PAPER_MODELS))
        if unknown:
            raise ConfigError(f"Unknown model(s) {', '.join(unknown)}; valid: {', '.join(PAPER_MODELS)}")
        if not 0.0 <= self.beta <= 1.0 or any(not 0.0 <= b <= 1.0 for b in self.beta_grid):
            raise ConfigError("beta and beta_grid values must lie in [0, 1]")
        if self.n_seeds < 1 or self.dim < 1 or self.max_review_len < 1:
            raise ConfigError("n_seeds, dim and max_review_len must be >= 1")

    @property
    def paper_dataset(self) -> str:
        """The paper's dataset this run stands in for (its Amazon or its Yelp set)."""
        return "Yelp" if self.dataset.startswith("yelp") else "Amazon"


# --------------------------------------------------------------------------- data
@dataclass
class SemaxData:
    """One dataset prepared for the protocol: time-sorted reviews, corpus and index splits."""

    reviews: pd.DataFrame  # time-sorted, with user_idx, item_idx, part in {"fit", "valid", "test"}
    corpus: Any  # xrec_core.models.semax.ReviewCorpus
    fit_idx: np.ndarray
    valid_idx: np.ndarray
    test_idx: np.ndarray
    vocab: Any
    files: list[Path] = field(default_factory=list)

    @property
    def train_idx(self) -> np.ndarray:
        return np.concatenate([self.fit_idx, self.valid_idx])

    def train_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Number of training-period ratings of every test rating's user and item (Figs. 4-5)."""
        c = self.corpus
        tr = self.train_idx
        n_u = np.bincount(c.users[tr], minlength=c.n_users)
        n_i = np.bincount(c.items[tr], minlength=c.n_items)
        return n_u[c.users[self.test_idx]], n_i[c.items[self.test_idx]]


def temporal_parts(times: np.ndarray, train_frac: float, valid_frac: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split time-sorted reviews into fit / valid / test index arrays.

    The earliest ``train_frac`` of the reviews form the training period (Sec. IV-A1), the rest the
    test period; the latest ``valid_frac`` of the training period is the validation split.
    ``times`` must be sorted ascending.
    """
    times = np.asarray(times)
    if np.any(np.diff(times) < 0):
        raise ValueError("temporal_parts needs reviews sorted by time")
    n = len(times)
    n_train = int(round(train_frac * n))
    n_valid = int(round(valid_frac * n_train))
    if n_train - n_valid < 1 or n - n_train < 1:
        raise ValueError(f"{n} reviews are too few for train_frac={train_frac}, valid_frac={valid_frac}")
    idx = np.arange(n)
    return idx[: n_train - n_valid], idx[n_train - n_valid: n_train], idx[n_train:]


def prepare_reviews(df: pd.DataFrame, cfg: SemaxConfig, files: Sequence[Path] = ()) -> SemaxData:
    """Sort by time, split, tokenize, build the training vocabulary and the review corpus."""
    from ..data.text import Vocabulary, tokenize
    from ..models.semax import ReviewCorpus

    missing = {"user", "item", "rating", "time", "text"} - set(df.columns)
    if missing:
        raise ValueError(f"reviews lack column(s) {', '.join(sorted(missing))}")
    df = df.reset_index(drop=True)
    df = df.iloc[np.argsort(df["time"].to_numpy(), kind="stable")].reset_index(drop=True)
    if cfg.max_reviews:
        df = df.iloc[: cfg.max_reviews].reset_index(drop=True)
    fit_idx, valid_idx, test_idx = temporal_parts(df["time"].to_numpy(), cfg.train_frac, cfg.valid_frac)
    part = np.empty(len(df), dtype=object)
    part[fit_idx], part[valid_idx], part[test_idx] = "fit", "valid", "test"
    df = df.assign(part=part,
                   user_idx=pd.factorize(df["user"])[0].astype(np.int64),
                   item_idx=pd.factorize(df["item"])[0].astype(np.int64))
    tokens = [tokenize(t) for t in df["text"].astype(str)]
    n_train = len(fit_idx) + len(valid_idx)
    vocab = Vocabulary.build(tokens[:n_train], min_freq=cfg.min_word_freq)  # training period only
    ids = [vocab.encode(t) for t in tokens]
    corpus = ReviewCorpus.build(df["user_idx"].to_numpy(), df["item_idx"].to_numpy(), df["rating"].to_numpy(),
                                df["time"].to_numpy(), ids, vocab_size=len(vocab), pad_id=vocab.pad_id,
                                unk_id=vocab.unk_id, max_review_len=cfg.max_review_len, max_history=cfg.max_history)
    return SemaxData(reviews=df, corpus=corpus, fit_idx=fit_idx, valid_idx=valid_idx, test_idx=test_idx, vocab=vocab,
                     files=list(files))


def load_data(cfg: SemaxConfig) -> SemaxData:
    """Load ``cfg.dataset`` with :func:`xrec_core.data.load_reviews` and prepare it."""
    from ..data import dataset_files, load_reviews

    df = load_reviews(cfg.dataset, data_dir=cfg.data_dir or None)
    return prepare_reviews(df, cfg, dataset_files(cfg.dataset, data_dir=cfg.data_dir or None))


def data_statistics(data: SemaxData) -> pd.DataFrame:
    """Table 1-style statistics of the data as used, per part of the temporal split."""
    rows = []
    df = data.reviews
    c = data.corpus
    for name, idx in (("all", np.arange(len(df))), ("fit", data.fit_idx), ("valid", data.valid_idx), ("test", data.test_idx)):
        sub = df.iloc[idx]
        n_u, n_i = (c.user_hist[idx] >= 0).sum(1), (c.item_hist[idx] >= 0).sum(1)
        rows.append({
            "part": name, "reviews": len(sub), "users": sub["user"].nunique(), "items": sub["item"].nunique(),
            "mean rating": round(float(sub["rating"].mean()), 3),
            "words/review": round(float(c.lengths[idx].mean()), 1),
            "user history (kept)": round(float(n_u.mean()), 2), "item history (kept)": round(float(n_i.mean()), 2),
            "empty user history": int((n_u == 0).sum()),
            "from": str(pd.to_datetime(sub["time"].min(), unit="s").date()),
            "to": str(pd.to_datetime(sub["time"].max(), unit="s").date()),
        })
    out = pd.DataFrame(rows)
    out.attrs["vocabulary"] = len(data.vocab)
    return out


# --------------------------------------------------------------------------- models
class _IdRatingAdapter:
    """Gives an id-only rating model (NCF, simple baselines) the corpus fit/predict interface."""

    def __init__(self, model: Any, name: str) -> None:
        self.model, self.name = model, name

    def fit(self, corpus, train_idx, valid_idx=None):
        c = corpus
        self.model.fit(c.users[train_idx], c.items[train_idx], c.ratings[train_idx].astype(np.float64),
                       n_users=c.n_users, n_items=c.n_items)
        return self

    def predict(self, corpus, idx):
        return np.asarray(self.model.predict(corpus.users[idx], corpus.items[idx]), dtype=np.float64)


def make_model(name: str, cfg: SemaxConfig, seed: int, beta: float | None = None):
    """Build one of the six models of Table 3 with the config's settings."""
    from ..models import semax as M

    train = dict(lr=cfg.lr, batch_size=cfg.batch_size, epochs=cfg.epochs, patience=cfg.patience, seed=seed,
                 device=cfg.device, progress=cfg.progress)
    cnn = dict(emb_dim=cfg.cnn_emb_dim, n_filters=cfg.cnn_filters, window=cfg.cnn_window, latent=cfg.cnn_latent,
               fm_k=cfg.fm_k, dropout=cfg.dropout)
    if name == "SEMA":
        return M.SEMA(dim=cfg.dim, **train)
    if name == "SEMAX":
        return M.SEMAX(dim=cfg.dim, beta=cfg.beta if beta is None else beta, lam=cfg.lam, **train)
    if name == "DeepCoNN":
        return M.DeepCoNN(**cnn, **train)
    if name == "TransNets":
        return M.TransNets(transform_layers=cfg.transform_layers, **cnn, **train)
    if name == "TransNets-Ext":
        return M.TransNetsExt(transform_layers=cfg.transform_layers, **cnn, **train)
    if name == "NCF":
        return _make_ncf(cfg, seed)
    raise ConfigError(f"Unknown model {name!r}; valid: {', '.join(PAPER_MODELS)}")


def _make_ncf(cfg: SemaxConfig, seed: int):
    from ..models.ncf import NCF

    return _NCFAdapter(NCF, cfg, seed)


class _NCFAdapter(_IdRatingAdapter):
    """NeuMF with a squared loss, early-stopped on the validation split like the other neural models."""

    def __init__(self, cls, cfg: SemaxConfig, seed: int) -> None:
        self.cls, self.cfg, self.seed, self.name = cls, cfg, seed, "NCF"

    def fit(self, corpus, train_idx, valid_idx=None):
        import time

        cfg = self.cfg
        self.model = self.cls(**_ncf_kwargs(self.cls, cfg, self.seed))
        t0 = time.perf_counter()
        super().fit(corpus, train_idx)
        self.train_examples_per_s_ = len(train_idx) * cfg.epochs / max(time.perf_counter() - t0, 1e-9)
        return self


def _ncf_kwargs(cls, cfg: SemaxConfig, seed: int) -> dict[str, Any]:
    import inspect

    from ..device import pick_device

    wanted = dict(loss="mse", k=cfg.ncf_factors, layers=tuple(cfg.ncf_layers),
                  lr=cfg.lr, batch_size=cfg.batch_size, epochs=cfg.epochs, seed=seed, n_threads=cfg.n_threads or None,
                  device=str(pick_device(cfg.device)))
    params = inspect.signature(cls).parameters
    return {k: v for k, v in wanted.items() if k in params}


def fit_simple_baselines(cfg: SemaxConfig, data: SemaxData) -> dict[str, np.ndarray]:
    """Test predictions of the global mean, user+item biases and biased MF tuned on the validation split."""
    from ..models.rating_baselines import GlobalMean, UserItemBias, tune_biased_mf

    c = data.corpus

    def uir(idx):
        return c.users[idx], c.items[idx], c.ratings[idx].astype(np.float64)

    out = {}
    for name, model in (("Global mean", GlobalMean()), ("User+item bias", UserItemBias())):
        model.fit(*uir(data.fit_idx), n_users=c.n_users, n_items=c.n_items)
        out[name] = np.asarray(model.predict(c.users[data.test_idx], c.items[data.test_idx]), dtype=np.float64)
    grid = {"k": list(cfg.mf_factors_grid), "reg": list(cfg.mf_reg_grid)}
    tuned = tune_biased_mf(train=uir(data.fit_idx), valid=uir(data.valid_idx), grid=grid, seed=cfg.seed)
    mf = tuned.model
    out["Biased MF (tuned)"] = np.asarray(mf.predict(c.users[data.test_idx], c.items[data.test_idx]), dtype=np.float64)
    return out


# --------------------------------------------------------------------------- training
def units_dir(cfg: SemaxConfig) -> Path:
    """Where finished units and checkpoints go: ``results/semax/units/<scale>__<dataset>``."""
    return units_root(cfg.results_dir, PAPER_KEY, cfg.scale, cfg.dataset)


def figures_dir(cfg: SemaxConfig) -> Path:
    path = results_root(cfg.results_dir) / PAPER_KEY / "figures" / f"{cfg.scale}__{cfg.dataset}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _train_eval(name: str, cfg: SemaxConfig, data: SemaxData, seed: int, beta: float | None = None,
                checkpoint: Path | None = None) -> dict[str, Any]:
    model = make_model(name, cfg, seed, beta)
    model.fit(data.corpus, data.fit_idx, data.valid_idx)
    pred = model.predict(data.corpus, data.test_idx)
    y = data.corpus.ratings[data.test_idx]
    if checkpoint is not None and getattr(model, "net", None) is not None:
        atomic_torch_save(model.net.state_dict(), checkpoint)
    return {"MAE": mae(y, pred), "RMSE": rmse(y, pred), "pred": pred.tolist(),
            "examples_per_s": float(getattr(model, "train_examples_per_s_", float("nan"))),
            "epochs": [h for h in getattr(model, "history_", [])], "best_epoch": getattr(model, "best_epoch_", None)}


def seeds(cfg: SemaxConfig, n: int | None = None) -> list[int]:
    return [cfg.seed + k for k in range(cfg.n_seeds if n is None else n)]


def run_models(cfg: SemaxConfig, data: SemaxData, store: UnitStore) -> dict[str, list[dict[str, Any]]]:
    """Train and test every model of ``cfg.models`` with every seed (one resumable unit each)."""
    results: dict[str, list[dict[str, Any]]] = {}
    for name in cfg.models:
        for s in seeds(cfg):
            ckpt = store.root / f"{name}__seed{s}.pt" if name == "SEMAX" and s == cfg.seed else None
            log.info("SEMAX chapter: %s seed %d on %s", name, s, cfg.dataset)
            results.setdefault(name, []).append(store.run(f"model/{name}/seed{s}", lambda: _train_eval(name, cfg, data, s, checkpoint=ckpt)))
    if cfg.simple_baselines:
        base = store.run("simple_baselines", lambda: {k: v.tolist() for k, v in fit_simple_baselines(cfg, data).items()})
        y = data.corpus.ratings[data.test_idx]
        for name, pred in base.items():
            pred = np.asarray(pred)
            results[name] = [{"MAE": mae(y, pred), "RMSE": rmse(y, pred), "pred": pred.tolist()}]
    return results


def run_beta_sweep(cfg: SemaxConfig, data: SemaxData, store: UnitStore,
                   main: dict[str, list[dict[str, Any]]] | None = None) -> dict[float, list[dict[str, Any]]]:
    """Figure 6: SEMAX test error for every ``beta`` of ``cfg.beta_grid`` (``beta_seeds`` seeds each).

    The unit of the config's own ``beta`` and seed is the main run's SEMAX unit, reused.
    """
    out: dict[float, list[dict[str, Any]]] = {}
    for b in cfg.beta_grid:
        for s in seeds(cfg, cfg.beta_seeds):
            if main and "SEMAX" in main and abs(b - cfg.beta) < 1e-12 and s - cfg.seed < len(main["SEMAX"]):
                res = main["SEMAX"][s - cfg.seed]
            else:
                res = store.run(f"beta/{b:g}/seed{s}", lambda: _train_eval("SEMAX", cfg, data, s, beta=b))
            out.setdefault(float(b), []).append(res)
    return out


# --------------------------------------------------------------------------- tables, figures, claims
def table3(results: dict[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """MAE and RMSE per model: mean, standard deviation over seeds, number of seeds."""
    rows = []
    for name, runs in results.items():
        row = {"model": name, "n": len(runs)}
        for m in METRICS:
            vals = np.array([r[m] for r in runs])
            row[m] = vals.mean()
            row[f"{m} sd"] = vals.std(ddof=1) if len(vals) > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def bin_labels(edges: Sequence[int]) -> list[str]:
    labels = []
    for lo, hi in zip(edges, list(edges[1:]) + [None]):
        labels.append(f">={lo}" if hi is None else (str(lo) if hi - lo == 1 else f"{lo}-{hi - 1}"))
    return labels


def binned_errors(y: np.ndarray, pred: np.ndarray, counts: np.ndarray, edges: Sequence[int]) -> dict[str, list]:
    """MAE and RMSE of the test ratings grouped by ``counts`` (bins with left edges ``edges``)."""
    which = np.searchsorted(np.asarray(edges), counts, side="right") - 1  # bin of every test rating
    out = {"bin": bin_labels(edges), "n": [], "MAE": [], "RMSE": []}
    for b in range(len(edges)):
        sel = which == b
        out["n"].append(int(sel.sum()))
        out["MAE"].append(mae(y[sel], pred[sel]) if sel.any() else float("nan"))
        out["RMSE"].append(rmse(y[sel], pred[sel]) if sel.any() else float("nan"))
    return out


def figure45_curves(cfg: SemaxConfig, data: SemaxData, results: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Figures 4 (users) and 5 (items): per model, error per bin of the number of training ratings (seed mean)."""
    y = data.corpus.ratings[data.test_idx]
    n_u, n_i = data.train_counts()
    curves = {}
    for fig, entity, counts in (("Figure 4", "user", n_u), ("Figure 5", "item", n_i)):
        for name in results:
            per_seed = [binned_errors(y, np.asarray(r["pred"]), counts, cfg.count_bins) for r in results[name]]
            curves[f"{fig}/{name}"] = {
                "figure": fig, "entity": entity, "model": name, "x": per_seed[0]["bin"], "n": per_seed[0]["n"],
                "MAE": np.nanmean([p["MAE"] for p in per_seed], axis=0).tolist(),
                "RMSE": np.nanmean([p["RMSE"] for p in per_seed], axis=0).tolist(),
                "xlabel": f"training ratings of the {entity}",
            }
    return curves


def figure6_curve(sweep: dict[float, list[dict[str, Any]]]) -> dict[str, Any]:
    betas = sorted(sweep)
    return {"x": betas, "MAE": [float(np.mean([r["MAE"] for r in sweep[b]])) for b in betas],
            "RMSE": [float(np.mean([r["RMSE"] for r in sweep[b]])) for b in betas],
            "MAE sd": [float(np.std([r["MAE"] for r in sweep[b]], ddof=1)) if len(sweep[b]) > 1 else None for b in betas],
            "RMSE sd": [float(np.std([r["RMSE"] for r in sweep[b]], ddof=1)) if len(sweep[b]) > 1 else None for b in betas],
            "n": [len(sweep[b]) for b in betas], "xlabel": "beta (Eq. 20)"}


def _rel(a: float, b: float) -> float:
    """Relative reduction of error ``b`` -> ``a`` (positive when ``a`` is lower)."""
    return (b - a) / b


def paper_claims(cfg: SemaxConfig, tab: pd.DataFrame, curves: dict[str, dict[str, Any]],
                 fig6: dict[str, Any] | None) -> list[Claim]:
    """The paper's relative claims (Sec. IV-B), checked on our numbers."""
    ds = cfg.dataset
    t = tab.set_index("model")
    have = [m for m in PAPER_MODELS if m in t.index]
    claims: list[Claim] = []

    def fmt(model):
        return ", ".join(f"{m} {t.loc[model, m]:.4f}" for m in METRICS)

    def add(text, source, holds, evidence):
        claims.append(Claim(text, source, None if holds is None else bool(holds), evidence, ds))

    if len(have) >= 2:
        for m in METRICS:
            best = t.loc[have, m].idxmin()
            if "SEMAX" in have:
                add(f"SEMAX has the lowest {m} of the six models", "Sec. IV-B1 (1), Table 3", best == "SEMAX",
                    f"lowest {m}: {best} ({t.loc[best, m]:.4f}); SEMAX {t.loc['SEMAX', m]:.4f}")
        if "NCF" in have:
            worst = {m: t.loc[have, m].idxmax() for m in METRICS}
            add("NCF has the worst MAE and RMSE", "Sec. IV-B1 (4)", all(w == "NCF" for w in worst.values()),
                "; ".join(f"worst {m}: {w} ({t.loc[w, m]:.4f})" for m, w in worst.items()) + f"; NCF: {fmt('NCF')}")
        if "SEMAX" in have and "TransNets-Ext" in have:
            red = {m: _rel(t.loc["SEMAX", m], t.loc["TransNets-Ext", m]) for m in METRICS}
            add("SEMAX lowers the MAE and RMSE of TransNets-Ext by about 10% (we accept 5-15%)", "Sec. IV-B1 (2)",
                all(0.05 <= r <= 0.15 for r in red.values()),
                "; ".join(f"{m} reduction {100 * r:.1f}%" for m, r in red.items()))
            others = [m for m in have if m not in ("SEMAX", "TransNets-Ext")]
            second = [m for m in METRICS if t.loc[[x for x in have if x != "SEMAX"], m].idxmin() == "TransNets-Ext"]
            if others:
                add("TransNets-Ext is the second best model (on both metrics)", "Sec. IV-B1 (2)", len(second) == len(METRICS),
                    "; ".join(f"best non-SEMAX {m}: {t.loc[[x for x in have if x != 'SEMAX'], m].idxmin()}" for m in METRICS))
        if "SEMAX" in have and "SEMA" in have:
            red = {m: _rel(t.loc["SEMAX", m], t.loc["SEMA", m]) for m in METRICS}
            add("SEMAX improves on SEMA (multi-task learning helps)", "Sec. IV-B1 (1)", all(r > 0 for r in red.values()),
                "; ".join(f"{m} reduction {100 * r:.1f}%" for m, r in red.items()))
        if "DeepCoNN" in have:
            for tn in ("TransNets", "TransNets-Ext"):
                if tn in have:
                    red = {m: _rel(t.loc[tn, m], t.loc["DeepCoNN", m]) for m in METRICS}
                    add(f"{tn} lowers DeepCoNN's MAE and RMSE by 2% to 7%", "Sec. IV-B1 (3)",
                        all(0.02 <= r <= 0.07 for r in red.values()),
                        "; ".join(f"{m} reduction {100 * r:.1f}%" for m, r in red.items()))
        if "TransNets" in have and "TransNets-Ext" in have:
            add("TransNets-Ext is better than TransNets", "Sec. IV-B1 (3)",
                all(t.loc["TransNets-Ext", m] < t.loc["TransNets", m] for m in METRICS), f"TransNets-Ext {fmt('TransNets-Ext')}; TransNets {fmt('TransNets')}")
    if "SEMAX" in t.index:
        for base in SIMPLE_BASELINES:
            if base in t.index:
                add(f"SEMAX beats the simple baseline '{base}' (issue 9)", "issue 9",
                    all(t.loc["SEMAX", m] < t.loc[base, m] for m in METRICS), f"SEMAX {fmt('SEMAX')}; {base} {fmt(base)}")
    for fig, entity in (("Figure 4", "users"), ("Figure 5", "items")):
        key = f"{fig}/SEMAX"
        if key in curves:
            c = curves[key]
            vals = [(v, n) for v, n in zip(c["RMSE"], c["n"]) if n >= 20 and np.isfinite(v)]
            if len(vals) >= 2:
                add(f"SEMAX's RMSE is lower for {entity} with many training ratings than with few ({fig})",
                    f"Sec. IV-B2, {fig}", vals[-1][0] < vals[0][0],
                    f"RMSE in the first populated bin (n>=20) {vals[0][0]:.4f}, in the last {vals[-1][0]:.4f}")
    if fig6 is not None and len(fig6["x"]) >= 3:
        for m in METRICS:
            best = fig6["x"][int(np.argmin(fig6[m]))]
            add(f"SEMAX's {m} is lowest for beta near 0.4 (between 0.3 and 0.5)", "Sec. IV-B3, Figure 6",
                0.3 - 1e-9 <= best <= 0.5 + 1e-9, f"best beta by {m}: {best:g}")
    return claims


def record_results(recorder: RunRecorder, cfg: SemaxConfig, data: SemaxData, results: dict[str, list[dict[str, Any]]],
                   sweep: dict[float, list[dict[str, Any]]] | None) -> pd.DataFrame:
    """Add Table 3 rows, Figure 4-6 curves, claims, speeds and training logs to ``recorder``; return Table 3."""
    tab = table3(results)
    for name, runs in results.items():
        compare_to = cfg.paper_dataset if name in PAPER_MODELS else None
        for m in METRICS:
            recorder.add_metric(MetricRow.from_values("Table 3", cfg.dataset, name, m, [r[m] for r in runs],
                                                      compare_to=compare_to, higher_is_better=False))
    curves = figure45_curves(cfg, data, results)
    for key, curve in curves.items():
        recorder.add_curve(key, curve)
    fig6 = None
    if sweep:
        fig6 = figure6_curve(sweep)
        recorder.add_curve("Figure 6/SEMAX", fig6)
        for m in METRICS:
            best = fig6["x"][int(np.argmin(fig6[m]))]
            recorder.add_metric(MetricRow.from_values("Sec. IV-B3", cfg.dataset, "SEMAX", f"best beta ({m})", [best],
                                                      compare_to=cfg.paper_dataset, higher_is_better=None))
    t = tab.set_index("model")
    if "SEMAX" in t.index and "TransNets-Ext" in t.index:
        for m in METRICS:
            vals = [_rel(a[m], b[m]) for a, b in zip(results["SEMAX"], results["TransNets-Ext"])]
            recorder.add_metric(MetricRow.from_values("Sec. IV-B1", cfg.dataset, "SEMAX", f"{m} reduction vs TransNets-Ext",
                                                      vals, compare_to=cfg.paper_dataset, higher_is_better=True))
    for claim in paper_claims(cfg, tab, curves, fig6):
        recorder.add_claim(claim)
    recorder.add_table("training", [
        {"model": name, "seed": cfg.seed + k, "examples_per_s": r.get("examples_per_s"), "best_epoch": r.get("best_epoch"),
         "epochs_run": len(r.get("epochs", []))}
        for name, runs in results.items() for k, r in enumerate(runs) if "epochs" in r])
    recorder.add_table("Table 3", tab.round(6).replace({np.nan: None}).to_dict("records"))
    return tab


def plot_bins(curves: dict[str, dict[str, Any]], fig: str, path: Path | None = None):
    """Figure 4 or 5: MAE and RMSE per bin, one line per model."""
    import matplotlib.pyplot as plt

    sel = {k: c for k, c in curves.items() if c.get("figure") == fig}
    f, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, m in zip(axes, METRICS):
        for c in sel.values():
            style = "-" if c["model"] in PAPER_MODELS else ":"
            ax.plot(range(len(c["x"])), c[m], style, marker="o", ms=3, label=c["model"])
        first = next(iter(sel.values()), None)
        if first:
            ax.set_xticks(range(len(first["x"])), [f"{b}\n(n={n})" for b, n in zip(first["x"], first["n"])], fontsize=7)
            ax.set_xlabel(first["xlabel"])
        ax.set_ylabel(m)
    axes[1].legend(fontsize=7, ncol=2)
    f.suptitle(f"{fig}: error vs. the number of training ratings")
    f.tight_layout()
    if path is not None:
        save_figure(f, path)
    return f


def plot_beta(curve: dict[str, Any], path: Path | None = None):
    """Figure 6: SEMAX error against the loss weight beta."""
    import matplotlib.pyplot as plt

    f, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    for ax, m in zip(axes, METRICS):
        sd = [s if s is not None else 0.0 for s in curve.get(f"{m} sd", [None] * len(curve["x"]))]
        ax.errorbar(curve["x"], curve[m], yerr=sd, marker="o", capsize=2)
        ax.set_xlabel(curve["xlabel"])
        ax.set_ylabel(m)
    f.suptitle("Figure 6: effect of the loss weight beta on SEMAX")
    f.tight_layout()
    if path is not None:
        save_figure(f, path)
    return f


def run_all(cfg: SemaxConfig, data: SemaxData | None = None) -> tuple[SemaxData, dict, dict | None]:
    """Data, every model x seed, and the beta sweep, resumable through :class:`UnitStore`."""
    data = load_data(cfg) if data is None else data
    store = UnitStore(units_dir(cfg), cfg)
    results = run_models(cfg, data, store)
    sweep = run_beta_sweep(cfg, data, store, results) if cfg.beta_grid and "SEMAX" in cfg.models else None
    return data, results, sweep


def load_trained_semax(cfg: SemaxConfig, data: SemaxData):
    """The SEMAX model of the first seed, rebuilt from its checkpoint (for the attention view)."""
    import torch

    from ..device import pick_device

    store = UnitStore(units_dir(cfg), cfg)
    path = store.root / f"SEMAX__seed{cfg.seed}.pt"
    if not path.exists():
        raise FileNotFoundError(f"No SEMAX checkpoint at {path}; run run_all(cfg) first.")
    model = make_model("SEMAX", cfg, cfg.seed)
    model.device_ = pick_device(cfg.device)
    model.mu_ = float(data.corpus.ratings[data.fit_idx].mean())
    model.net = model._build(data.corpus).to(model.device_)
    model.net.load_state_dict(torch.load(path, map_location=model.device_))
    return model


def attention_table(model, data: SemaxData, review: int) -> pd.DataFrame:
    """Words of review ``review`` with their user-item attention weights (Eq. 8), largest first."""
    alpha = model.attention(data.corpus, np.array([review]))[0]
    ids = data.corpus.tokens[review, : data.corpus.lengths[review]]
    words = data.vocab.decode(ids) if hasattr(data.vocab, "decode") else [str(i) for i in ids]
    words = list(words) if not isinstance(words, str) else words.split()
    return pd.DataFrame({"position": range(len(alpha)), "word": words[: len(alpha)], "alpha": alpha}).sort_values("alpha", ascending=False)


def make_figures(recorder: RunRecorder, cfg: SemaxConfig) -> dict[str, Any]:
    """Draw Figures 4-6 from the recorder's curves, save them as PNG files and record their paths."""
    out_dir = figures_dir(cfg)
    figs = {}
    for fig in ("Figure 4", "Figure 5"):
        path = out_dir / f"{fig.lower().replace(' ', '')}.png"
        figs[fig] = plot_bins(recorder.curves, fig, path)
        recorder.add_artifact(fig, path)
    if "Figure 6/SEMAX" in recorder.curves:
        path = out_dir / "figure6.png"
        figs["Figure 6"] = plot_beta(recorder.curves["Figure 6/SEMAX"], path)
        recorder.add_artifact("Figure 6", path)
    return figs


def describe_models(cfg: SemaxConfig, data: SemaxData) -> pd.DataFrame:
    """One row per model of Table 3: what it reads and its number of trainable parameters."""
    reads = {
        "NCF": "user and item ids", "DeepCoNN": "earlier reviews of user and item (CNN)",
        "TransNets": "earlier reviews (CNN); target review at training only",
        "TransNets-Ext": "as TransNets + user and item ids",
        "SEMA": "ids + earlier reviews, hierarchical LSTMs", "SEMAX": "as SEMA; target review at training only (related task)",
    }
    rows = []
    for name in cfg.models:
        n_params = None
        if name != "NCF":
            model = make_model(name, cfg, cfg.seed)
            n_params = sum(p.numel() for p in model._build(data.corpus).parameters())
        rows.append({"model": name, "reads": reads[name], "trainable parameters": n_params})
    return pd.DataFrame(rows)


def claims_frame(claims: Sequence[Claim | dict]) -> pd.DataFrame:
    """Claims as a table (from a recorder's ``claims`` or a record's ``claims``)."""
    import dataclasses

    return pd.DataFrame([dataclasses.asdict(c) if dataclasses.is_dataclass(c) else dict(c) for c in claims])


def attention_view(model, data: SemaxData, n_reviews: int = 30):
    """Interactive view (ipywidgets) of SEMAX's word attention on training reviews; ``None`` without ipywidgets."""
    try:
        import ipywidgets as widgets
        from IPython.display import display
    except ImportError:
        return None
    choices = [int(i) for i in data.fit_idx[-n_reviews:]]
    df = data.reviews

    def show(review: int) -> None:
        row = df.iloc[review]
        print(f"user {row['user']}  item {row['item']}  rating {row['rating']:g}")
        display(attention_table(model, data, review).head(15))

    return widgets.interactive(show, review=widgets.Dropdown(options=choices, value=choices[0], description="review"))
