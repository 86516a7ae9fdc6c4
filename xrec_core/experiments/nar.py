"""NAR / CAR / CNR (paper 004): the protocol of Sec. 5 on the data present here.

Data: 4-5 star reviews are positives; phrase-level (feature, sentiment) mentions come from the
MTER tuples (``mter-cellphones``, real Sentires-style output) or from our Sentires stand-in
(:mod:`xrec_core.models.nar.sentires`) on raw Amazon reviews. Split: per user 4:1 for users with
more than 5 positives (others train only); each user's test positives are ranked among 100
sampled non-positive candidates; Precision, Recall, F1, hit rate, NDCG at 10 and MRR at 1
(Tables 4-8). Explanations: each model's per-user explanation vector against the features the
user expressed sentiment on (Table 3, Eq. 10), Pearson correlations between models (Fig. 4),
t-SNE of the vectors (Fig. 5) and top-5 words (Table 9).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..config import ExperimentConfig
from ..metrics import ranking as R
from ..metrics.significance import higher_across_folds
from ..records import Claim, MetricRow, RunRecorder, UnitStore

log = logging.getLogger(__name__)

PAPER_MODELS = ("NCF", "VBPR", "CER", "NAR", "CAR", "CNR")
EXTRA_MODELS = ("CNR-L2", "MostPop", "BPR (tuned)")
EXPLAINERS = ("NAR", "CAR", "CNR")
#: our dataset name -> the paper's ranking table and its name for the dataset (Amazon 2014 5-core files)
PAPER_DATASET = {"amazon2014-instruments": ("Table 4", "Instrument"), "amazon2014-instantvideo": ("Table 5", "Video"),
                 "amazon2014-digitalmusic": ("Table 6", "Music"), "amazon2014-beauty": ("Table 7", "Beauty"),
                 "amazon2014-clothing": ("Table 8", "Clothing")}
#: the paper's Table 2 (users, items, interactions, features) per dataset
PAPER_TABLE2 = {"amazon2014-instruments": (1276, 843, 3581, 325), "amazon2014-instantvideo": (4333, 1486, 11759, 350),
                "amazon2014-digitalmusic": (5339, 3538, 40315, 1366), "amazon2014-beauty": (21472, 11897, 105659, 1985),
                "amazon2014-clothing": (37703, 22647, 142553, 1462)}
RANK_METRICS = ("Precision", "Recall", "F1", "Hit Rate", "NDCG", "MRR")
#: the paper's Table 2 feature counts, the target size of our extracted feature sets
PAPER_FEATURES = {"amazon2014-instruments": 325, "amazon2014-instantvideo": 350, "amazon2014-digitalmusic": 1366,
                  "amazon2014-beauty": 1985, "amazon2014-clothing": 1462}


@dataclass
class NARConfig(ExperimentConfig):
    """Sec. 5.1.4 defaults: embeddings 350, Adam lr 0.001, 50 epochs, CNR 20 outer iterations, lambda 1, beta 0.001."""

    dataset: str = "amazon2014-instruments"
    dim: int = 350
    lr: float = 1e-3
    epochs: int = 50
    batch_size: int = 256
    epsilon: float = 0.5
    adv_weight: float = 1.0
    adv_epochs: int = 10
    cf_beta: float = 0.001
    cf_outer: int = 20
    cf_inner: int = 20
    cf_retrain_epochs: int = 1
    n_candidates: int = 100
    k: int = 10
    explain_k: int = 5
    min_positives: int = 5
    positive_rating: float = 4.0
    n_features: int = 0  # 0: the paper's Table 2 count for the dataset (or all MTER features)
    n_seeds: int = 3
    max_users: int = 0  # 0: all users
    bpr_grid_epochs: int = 30
    progress: bool = False

    SCALES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": dict(dim=32, epochs=3, adv_epochs=1, cf_outer=2, cf_inner=5, n_seeds=1, max_users=300,
                      bpr_grid_epochs=3, n_candidates=50),
        "full": dict(n_seeds=3, adv_epochs=5, cf_inner=10),
        "paper": {},
    }
    REQUIRES: ClassVar[tuple[str, ...]] = ("rating", "text|tuples")


def reduction_notes(cfg: NARConfig) -> list[str]:
    """Plain statements of where a run is smaller than its scale's preset (stored in the record's notes)."""
    preset = NARConfig.from_scale(cfg.scale, dataset=cfg.dataset, data_dir=cfg.data_dir)
    notes = []
    if cfg.scale != "smoke" and cfg.max_users and cfg.max_users != preset.max_users:
        notes.append(f"users subsampled: {cfg.max_users} random users of {cfg.dataset} (the {cfg.scale} preset uses all); "
                     "chosen to fit the CPU time of one session, not the paper's setting")
    if cfg.n_seeds < preset.n_seeds:
        notes.append(f"{cfg.n_seeds} seed(s) instead of the {cfg.scale} preset's {preset.n_seeds}: no spread over seeds")
    return notes


@dataclass
class NARData:
    """Positives, features and the split of one dataset."""

    n_users: int
    n_items: int
    feature_names: list[str]
    f_u: np.ndarray  # (n_users, P) normalized Eq. 1 user features (training reviews)
    f_i: np.ndarray  # (n_items, P)
    train: sp.csr_matrix  # (n_users, n_items) positives
    test_users: np.ndarray
    test_items: list[np.ndarray]
    candidates: np.ndarray  # (n_test_users, n_candidates) negatives
    ground_truth: list[np.ndarray]  # per user, features with sentiment (Eq. 10's g_u)
    stats: pd.DataFrame
    files: list[Path]


def _reviews_with_mentions(cfg: NARConfig) -> tuple[pd.DataFrame, list[str], list[Path]]:
    from ..data import dataset_files, load_mter, load_reviews
    from ..models.nar.sentires import SentimentExtractor

    if cfg.dataset == "mter-cellphones":
        m = load_mter(cfg.dataset, cfg.data_dir or None)
        df = m.reviews.rename(columns={})
        df["mentions"] = [list(zip(f, s)) for f, s in zip(df["features"], df["sentiments"])]
        return df[["user", "item", "rating", "mentions"]], list(m.feature_names), dataset_files(cfg.dataset, cfg.data_dir or None)
    df = load_reviews(cfg.dataset, cfg.data_dir or None)
    df["user"] = df["user"].astype("category").cat.codes.astype(np.int64)
    df["item"] = df["item"].astype("category").cat.codes.astype(np.int64)
    n_feat = cfg.n_features or PAPER_FEATURES.get(cfg.dataset, 500)
    texts = (df["summary"].fillna("") + ". " + df["text"].fillna("")).tolist()
    extractor = SentimentExtractor(n_features=n_feat).fit(texts)
    df["mentions"] = [[(k, s) for k, s, _ in ms] for ms in extractor.transform(texts)]
    return df[["user", "item", "rating", "mentions"]], extractor.features_, dataset_files(cfg.dataset, cfg.data_dir or None)


def prepare(cfg: NARConfig, seed: int, mentions: tuple[pd.DataFrame, list[str], list[Path]] | None = None) -> NARData:
    """Positives (rating >= 4), the per-user 4:1 split, candidates and Eq. 1 features from training reviews.

    ``mentions`` (the reviews with their extracted (feature, sentiment) mentions) can be passed in
    so that several seeds share one extraction.
    """
    from ..data.splits import per_user_holdout, sample_candidates
    from ..data.stats import dataset_stats
    from ..models.nar.features import item_features, mention_counts, user_features

    df, feature_names, files = mentions if mentions is not None else _reviews_with_mentions(cfg)
    if cfg.max_users:
        keep = np.random.default_rng(0).permutation(df["user"].unique())[: cfg.max_users]
        df = df[df["user"].isin(keep)]
    df = df.copy()
    df["user"] = df["user"].astype("category").cat.codes.astype(np.int64)
    df["item"] = df["item"].astype("category").cat.codes.astype(np.int64)
    n_users, n_items, P = int(df["user"].max()) + 1, int(df["item"].max()) + 1, len(feature_names)
    pos = df[df["rating"] >= cfg.positive_rating]
    user_pos = [np.zeros(0, np.int64)] * n_users
    for u, g in pos.groupby("user"):
        user_pos[int(u)] = np.unique(g["item"].to_numpy())
    tr, te, kept = per_user_holdout(user_pos, 0.8, cfg.min_positives, seed)
    train_lists = list(user_pos)
    for u, t in zip(kept, tr):
        train_lists[u] = t
    rows = np.repeat(np.arange(n_users), [len(x) for x in train_lists])
    train = sp.csr_matrix((np.ones(len(rows)), (rows, np.concatenate(train_lists))), shape=(n_users, n_items))
    cands = sample_candidates([user_pos[u] for u in kept], n_items, n=min(cfg.n_candidates, n_items - 1 - max(
        (len(user_pos[u]) for u in kept), default=0)), seed=seed)
    # features from training reviews only (test reviews' text would leak the held-out interactions)
    test_pairs = {(int(u), int(i)) for u, items in zip(kept, te) for i in items}
    is_train = np.array([(u, i) not in test_pairs for u, i in zip(df["user"], df["item"])])
    t_u, t_i, s_i = mention_counts(df["user"][is_train], df["item"][is_train], df["mentions"][is_train], n_users, n_items, P)
    T = float(df["rating"].max())
    f_u, f_i = user_features(t_u, T) / T, item_features(t_i, s_i, T) / T
    t_all, _, _ = mention_counts(df["user"], df["item"], df["mentions"], n_users, n_items, P)
    gt = [np.flatnonzero(t_all[u]) for u in range(n_users)]
    stats = dataset_stats(pos.assign(text=""), cfg.dataset).drop(columns=["words / review"])
    stats["features"] = P
    stats["positives"] = int(train.sum()) + sum(len(t) for t in te)
    stats["test users"] = len(kept)
    return NARData(n_users, n_items, list(feature_names), f_u.astype(np.float32), f_i.astype(np.float32), train, kept,
                   te, cands, gt, stats, files)


def ranking_metrics(scores_pos_first: np.ndarray, n_pos: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-user metrics when each row holds the user's positives first, then the candidates."""
    n_users, width = scores_pos_first.shape
    top = np.argsort(-scores_pos_first, axis=1, kind="stable")[:, : max(k, 1)]
    relevant = [np.arange(n) for n in n_pos]
    return {"Precision": R.precision_at_k(top, relevant, k), "Recall": R.recall_at_k(top, relevant, k),
            "F1": R.f1_at_k(top, relevant, k), "Hit Rate": R.hit_at_k(top, relevant, k),
            "NDCG": R.ndcg_at_k(top, relevant, k), "MRR": R.mrr_at_k(top, relevant, 1)}


def _pools(data: NARData) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(t) for t in data.test_items) + data.candidates.shape[1]
    pools = np.empty((len(data.test_users), width), dtype=np.int64)
    n_pos = np.array([len(t) for t in data.test_items])
    for r, (t, c) in enumerate(zip(data.test_items, data.candidates)):
        row = np.concatenate([t, c])
        pools[r] = np.concatenate([row, np.full(width - len(row), c[0])])  # padding repeats a negative
    return pools, n_pos


def explanation_metrics(phi: np.ndarray, gt: list[np.ndarray], k: int) -> dict[str, float]:
    """Eq. 10: top-k features of each user's explanation vector against the user's sentiment features."""
    users = [u for u, g in enumerate(gt) if len(g)]
    top = R.topk_items(phi[users], k)
    rel = [gt[u] for u in users]
    return {"Precision": float(np.mean(R.precision_at_k(top, rel, k))), "Recall": R.mean_over_users(R.recall_at_k(top, rel, k)),
            "F1": float(np.mean(R.f1_at_k(top, rel, k))), "NDCG": R.mean_over_users(R.ndcg_at_k(top, rel, k))}


def run_model(name: str, data: NARData, cfg: NARConfig, seed: int) -> dict[str, Any]:
    """Train one model on the split and evaluate ranking (and explanations for NAR/CAR/CNR)."""
    import torch

    from ..models.nar.models import ExplainableRanker, RankerConfig
    from ..models.ncf import NCF
    from ..models.ranking_baselines import MostPop, tune_bpr

    t0 = time.perf_counter()
    pools, n_pos = _pools(data)
    out: dict[str, Any] = {}
    device = "cuda" if cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available()) else "cpu"
    if name == "MostPop":
        pop = MostPop().fit(data.train).popularity_
        scores = pop[pools]
    elif name == "BPR (tuned)":
        # validation: one held-out training positive per user with enough positives
        rng = np.random.default_rng(seed)
        tr = data.train.tolil(copy=True)
        valid = [np.zeros(0, np.int64)] * data.n_users
        for u in data.test_users:
            items = data.train[u].indices
            if len(items) > 2:
                v = int(rng.choice(items))
                tr[u, v] = 0
                valid[u] = np.array([v])
        grid = {"k": [32, 64], "reg": [1e-4, 1e-2], "epochs": [cfg.bpr_grid_epochs], "lr": [0.05]}
        tuned = tune_bpr(tr.tocsr(), valid, grid, k_eval=cfg.k, seed=seed)
        from ..models.ranking_baselines import BPR

        model = BPR(**tuned.params).fit(data.train)
        scores = np.take_along_axis(model.score(data.test_users), pools, axis=1)
        out["params"] = tuned.params
    elif name == "NCF":
        model = NCF(k=cfg.dim, layers=(2 * cfg.dim, cfg.dim), lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size,
                    loss="bpr", device=device, seed=seed).fit(data.train)
        scores = model.score(data.test_users, pools)
    else:
        rc = RankerConfig(dim=cfg.dim, lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size, epsilon=cfg.epsilon,
                          adv_weight=cfg.adv_weight, adv_epochs=cfg.adv_epochs, cf_beta=cfg.cf_beta, cf_outer=cfg.cf_outer,
                          cf_inner=cfg.cf_inner, cf_retrain_epochs=cfg.cf_retrain_epochs, seed=seed)
        model = ExplainableRanker(name, data.f_u, data.f_i, rc, device=device, progress=cfg.progress).fit(data.train)
        scores = model.score_candidates(data.test_users, pools)
        out["loss_curve"] = [float(x) for x in model.losses]
        if hasattr(model, "flip_rates"):
            out["flip_rates"] = [float(x) for x in model.flip_rates]
        if name in EXPLAINERS:
            phi = model.explanations()
            out["explanations"] = phi.round(6).tolist()
            out["explain"] = explanation_metrics(phi, data.ground_truth, cfg.explain_k)
    # padded columns repeat a negative: mask them out of the ranking
    width = pools.shape[1]
    real = np.array([[c < n + data.candidates.shape[1] for c in range(width)] for n in n_pos])
    scores = np.where(real, scores, -np.inf)
    per_user = ranking_metrics(scores, n_pos, cfg.k)
    out["ranking"] = {m: float(np.nanmean(v)) for m, v in per_user.items()}
    out["fit_s"] = time.perf_counter() - t0
    out["examples_per_s"] = float(data.train.nnz * cfg.epochs / max(out["fit_s"], 1e-9))
    return out


def run_protocol(cfg: NARConfig, recorder: RunRecorder, units_root: str | Path | None = None,
                 data: NARData | None = None) -> dict[str, Any]:
    """All models x seeds (resumable: one unit per (seed, model)); fills the recorder; returns the results.

    ``data``, when given, is the prepared split of the first seed (``prepare(cfg, cfg.seed)``).
    """
    from ..progress import tqdm

    from ..device import set_seed, set_threads

    set_threads(cfg.n_threads)
    # runtime settings do not change a unit's result
    store = UnitStore(units_root or units_dir(cfg), asdict(cfg) | {"progress": False, "device": "",
                                                 "n_threads": 0})
    models = PAPER_MODELS + EXTRA_MODELS
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in models}
    data0, mentions = data, None
    for s in range(cfg.n_seeds):
        seed = cfg.seed + s
        if s == 0 and data0 is not None:
            data = data0
        else:
            mentions = mentions or _reviews_with_mentions(cfg)
            data = prepare(cfg, seed, mentions)
            data0 = data0 or data
        for name in tqdm(models, desc=f"seed {seed}", disable=not cfg.progress):
            set_seed(seed)
            log.info("seed %d: %s", seed, name)
            results[name].append(store.run(f"seed{seed}/{name}", lambda: run_model(name, data, cfg, seed)))
    recorder.add_data_files(data0.files)
    recorder.add_table("Table 2 (our data)", table2(data0, cfg).to_dict("records"))
    record_results(recorder, results, cfg)
    return {"results": results, "data": data0}


def record_results(recorder: RunRecorder, results: dict[str, list[dict[str, Any]]], cfg: NARConfig) -> None:
    """Metric rows (one value per seed) for Tables 3-8, timings, loss curves and the claims."""
    models = [m for m in PAPER_MODELS + EXTRA_MODELS if results.get(m)]
    table = PAPER_DATASET.get(cfg.dataset, ("Tables 4-8", None))[0]
    # the paper's numbers are on the Amazon 2014 files themselves: compare only on those
    compare_to = cfg.dataset if cfg.dataset in PAPER_DATASET else None
    for name in models:
        for metric in RANK_METRICS:
            vals = [r["ranking"][metric] for r in results[name]]
            recorder.add_metric(MetricRow.from_values(table, cfg.dataset, name, metric, vals,
                                                      compare_to=compare_to if name in PAPER_MODELS else None))
        recorder.timings[f"{name} fit_s"] = float(np.mean([r["fit_s"] for r in results[name]]))
        recorder.timings[f"{name} examples_per_s"] = float(np.mean([r["examples_per_s"] for r in results[name]]))
    for name in EXPLAINERS:
        for metric in ("Precision", "Recall", "F1", "NDCG"):
            vals = [r["explain"][metric] for r in results[name]]
            recorder.add_metric(MetricRow.from_values("Table 3", cfg.dataset, name, f"{metric}@{cfg.explain_k}", vals,
                                                      compare_to=compare_to if metric in ("F1", "NDCG") else None))
    for name in ("NAR", "CAR", "CNR", "CNR-L2", "CER", "VBPR"):
        curve = results[name][0]["loss_curve"]
        recorder.add_curve(f"loss {name}", {"x": list(range(1, len(curve) + 1)), "y": curve, "xlabel": "epoch", "ylabel": "BPR loss"})
    for name in ("CNR", "CNR-L2"):
        if "flip_rates" in results[name][0]:
            rates = results[name][0]["flip_rates"]
            recorder.add_curve(f"flip rate {name}", {"x": list(range(1, len(rates) + 1)), "y": rates,
                                                     "xlabel": "outer iteration", "ylabel": "training pairs flipped"})
    _claims(recorder, results, cfg)


def table2(data: NARData, cfg: NARConfig) -> pd.DataFrame:
    """Table 2 on our data beside the paper's (users, items, positive interactions, density, features)."""
    n_pos = int(data.train.nnz) + sum(len(t) for t in data.test_items)
    ours = {"source": f"ours ({cfg.dataset})", "users": data.n_users, "items": data.n_items, "interactions": n_pos,
            "density (%)": 100.0 * n_pos / (data.n_users * data.n_items), "features": len(data.feature_names),
            "test users": len(data.test_users)}
    rows = [ours]
    if cfg.dataset in PAPER_TABLE2:
        u, i, n, f = PAPER_TABLE2[cfg.dataset]
        rows.append({"source": f"paper ({PAPER_DATASET[cfg.dataset][1]})", "users": u, "items": i, "interactions": n,
                     "density (%)": 100.0 * n / (u * i), "features": f, "test users": None})
    return pd.DataFrame(rows)


def ranking_table(recorder: RunRecorder) -> pd.DataFrame:
    """Tables 4-8 layout: one row per model, mean ± std over seeds of each ranking metric."""
    rows: dict[str, dict[str, str]] = {}
    for m in recorder.metrics:
        if m.metric in RANK_METRICS:
            rows.setdefault(m.model, {})[m.metric] = f"{m.value:.4f} ± {m.std or 0.0:.4f}"
    return pd.DataFrame.from_dict(rows, orient="index")[list(RANK_METRICS)]


def plot_pearson(matrix: pd.DataFrame, path: Path | None = None):
    """Fig. 4: mean per-user Pearson correlation between the explanation vectors of GT, NAR, CAR and CNR."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    sns.heatmap(matrix.astype(float), annot=True, fmt=".2f", cmap="vlag", vmin=-1, vmax=1, square=True, ax=ax)
    ax.set_title("Fig. 4: Pearson correlation of explanations")
    fig.tight_layout()
    if path is not None:
        from ..plots import save_figure

        save_figure(fig, path)
    return fig


def tsne_embedding(vecs: dict[str, np.ndarray], seed: int = 0) -> pd.DataFrame:
    """Fig. 5: 2-D t-SNE (scikit-learn) of every model's user explanation vectors, one fit per model."""
    from sklearn.manifold import TSNE

    frames = []
    for name, X in vecs.items():
        perplexity = float(min(30.0, max(2.0, (len(X) - 1) / 3)))
        xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(X)
        frames.append(pd.DataFrame({"model": name, "x": xy[:, 0], "y": xy[:, 1]}))
    return pd.concat(frames, ignore_index=True)


def plot_tsne(points: pd.DataFrame, path: Path | None = None):
    """Fig. 5: one scatter panel per model."""
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(points["model"]))
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2))
    for ax, name in zip(np.atleast_1d(axes), names):
        sub = points[points["model"] == name]
        ax.scatter(sub["x"], sub["y"], s=6, alpha=0.6)
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Fig. 5: t-SNE of users' explanation vectors")
    fig.tight_layout()
    if path is not None:
        from ..plots import save_figure

        save_figure(fig, path)
    return fig


def plot_curves(curves: dict[str, Any], prefix: str, path: Path | None = None):
    """Training curves stored in a record (``loss <model>`` or ``flip rate <model>``)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    chosen = {k: v for k, v in curves.items() if k.startswith(prefix)}
    for name, c in chosen.items():
        ax.plot(c["x"], c["y"], marker=".", label=name[len(prefix):].strip())
    if chosen:
        first = next(iter(chosen.values()))
        ax.set_xlabel(first.get("xlabel", ""))
        ax.set_ylabel(first.get("ylabel", ""))
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    if path is not None:
        from ..plots import save_figure

        save_figure(fig, path)
    return fig


def figures_dir(cfg: NARConfig) -> Path:
    """``<results>/nar/figures/<scale>__<dataset>`` (beside the record)."""
    from ..paths import results_root

    path = results_root(cfg.results_dir or None) / "nar" / "figures" / f"{cfg.scale}__{cfg.dataset}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def units_dir(cfg: NARConfig) -> Path:
    """Finished units go to ``results/nar/units/<scale>__<dataset>`` (see :func:`xrec_core.paths.units_root`)."""
    from ..paths import units_root

    return units_root(cfg.results_dir or None, "nar", cfg.scale, cfg.dataset)


def _mean(results, name, metric, part="ranking") -> float:
    return float(np.mean([r[part][metric] for r in results[name]]))


def _per_seed(results, name, metric, part="ranking") -> list[float]:
    return [float(r[part][metric]) for r in results[name]]


def _claims(recorder: RunRecorder, results, cfg: NARConfig) -> None:
    """The paper's claims on our seeds: "A beats B" needs a higher mean and a paired t-test over the seeds with p < 0.05."""
    ds = cfg.dataset

    def above(pairs: Sequence[tuple[str, str]], metric: str = "NDCG", part: str = "ranking") -> tuple[bool, str]:
        """Whether, in every (higher, lower) pair, the first model is significantly above the second."""
        verdicts = [higher_across_folds(_per_seed(results, hi, metric, part), _per_seed(results, lo, metric, part), unit="seed")
                    for hi, lo in pairs]
        evidence = "; ".join(f"{hi} {_mean(results, hi, metric, part):.4f} vs {lo} {_mean(results, lo, metric, part):.4f} ({why})"
                             for (hi, lo), (_, why) in zip(pairs, verdicts))
        return all(ok for ok, _ in verdicts), evidence

    recorder.add_claim(Claim("CAR outperforms all other models (NDCG@10)", "Sec. 5.2, Tables 4-8",
                             *above([("CAR", m) for m in PAPER_MODELS + EXTRA_MODELS if m != "CAR"]), ds))
    recorder.add_claim(Claim("CNR beats CER", "Sec. 5.2", *above([("CNR", "CER")]), ds))
    recorder.add_claim(Claim("NAR is the weakest on small data sets (NDCG@10)", "Sec. 5.2, Table 4",
                             *above([(m, "NAR") for m in PAPER_MODELS if m != "NAR"]), ds))
    recorder.add_claim(Claim("CAR's explanations are far worse than NAR's and CNR's (F1)", "Sec. 5.3, Table 3",
                             *above([(m, "CAR") for m in ("NAR", "CNR")], "F1", "explain"), ds))
    ndcg = {m: _mean(results, m, "NDCG") for m in PAPER_MODELS}
    best = max(PAPER_MODELS, key=ndcg.get)
    recorder.add_claim(Claim("the best paper model beats MostPop and tuned BPR (our addition)", "issue 9",
                             *above([(best, "MostPop"), (best, "BPR (tuned)")]), ds))


def explanation_matrix(results, data: NARData, max_users: int = 400, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Explanation vectors of GT, NAR, CAR, CNR for users with ground truth (first seed)."""
    users = np.array([u for u, g in enumerate(data.ground_truth) if len(g)])
    users = np.sort(np.random.default_rng(seed).permutation(users)[:max_users])
    P = len(data.feature_names)
    gt = np.zeros((len(users), P))
    for r, u in enumerate(users):
        gt[r, data.ground_truth[u]] = 1.0
    vecs = {"GT": gt}
    for m in EXPLAINERS:
        vecs[m] = np.asarray(results[m][0]["explanations"])[users]
    return vecs, users


def pearson_heatmap(vecs: dict[str, np.ndarray]) -> pd.DataFrame:
    """Fig. 4: mean over users of the Pearson correlation between two models' explanation vectors."""
    names = list(vecs)
    out = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for a in names:
        for b in names:
            if a < b:
                va, vb = vecs[a], vecs[b]
                va = va - va.mean(1, keepdims=True)
                vb = vb - vb.mean(1, keepdims=True)
                den = np.linalg.norm(va, axis=1) * np.linalg.norm(vb, axis=1)
                r = np.divide((va * vb).sum(1), den, out=np.full(len(den), np.nan), where=den > 0)
                out.loc[a, b] = out.loc[b, a] = float(np.nanmean(r))
    return out


def top_words(results, data: NARData, n_users: int = 3, k: int = 5, seed: int = 0) -> pd.DataFrame:
    """Table 9: top-k explanation words of a few random users per model, beside their GT features."""
    users = [u for u, g in enumerate(data.ground_truth) if len(g) >= k]
    users = list(np.random.default_rng(seed).permutation(users)[:n_users])
    rows = []
    for u in users:
        row = {"user": int(u), "GT": ", ".join(data.feature_names[j] for j in data.ground_truth[u][:k])}
        for m in EXPLAINERS:
            phi = np.asarray(results[m][0]["explanations"][u])
            row[m] = ", ".join(data.feature_names[j] for j in np.argsort(-phi, kind="stable")[:k])
        rows.append(row)
    return pd.DataFrame(rows)


def explanation_browser(words: pd.DataFrame):
    """Interactive view (ipywidgets): pick a user, see the ground truth and every model's top explanation words.

    Returns the widget, or ``None`` without ipywidgets; the caller shows the static table as well,
    so the published page renders without a kernel.
    """
    try:
        import ipywidgets as widgets
    except ImportError:
        return None
    from IPython.display import display

    pick = widgets.Dropdown(options=[(f"user {u}", k) for k, u in enumerate(words["user"])], description="user")
    out = widgets.Output()

    def show(change=None) -> None:
        out.clear_output()
        with out:
            display(words.iloc[[pick.value]].set_index("user").T)

    pick.observe(show, names="value")
    show()
    return widgets.VBox([pick, out])
