"""Ours vs cornac on identical splits: quality and fit time of the same model, side by side.

Rating models (PMF, biased MF, HFT) run k-fold cross-validation on Amazon Musical
Instruments; ranking models (BPR, NeuMF, CTR) run the CiteULike-t warm-start 80/20 split with
full ranking. cornac's NeuMF learns from implicit feedback only (pointwise log loss with four
sampled negatives), so NeuMF is compared on ranking, where ours trains the same network with BPR;
the architectures match, the losses do not, and the page says so. cornac's VBPR needs visual
features, which none of the five papers' data carries, so it has no counterpart here. Each (model, implementation, fold) is one resumable unit; the record is rewritten
after every unit so an interrupted harness still leaves a valid, partial record. cornac is an
optional extra (``pip install -e ".[cornac]"``): it is imported only here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .metrics import ranking as R
from .records import MetricRow, RunRecorder, UnitStore

log = logging.getLogger(__name__)

RATING_MODELS = ("PMF", "Biased MF", "HFT")
RANKING_MODELS = ("BPR", "NeuMF", "CTR")


@dataclass
class ParityConfig:
    rating_dataset: str = "amazon2014-instruments"
    ranking_dataset: str = "citeulike-t"
    folds: int = 10
    hft_folds: int = 3  # cornac HFT takes about a minute per fold on 2 cores
    seed: int = 123
    k: int = 10
    hft_iter: int = 50
    ctr_k: int = 200
    ctr_iter: int = 50
    bpr_k: int = 50
    bpr_iter: int = 200
    bpr_lr: float = 0.01
    bpr_reg: float = 0.01  # cornac's default lambda_reg, given to both
    neumf_epochs: int = 20
    models: Sequence[str] = field(default_factory=lambda: RATING_MODELS + RANKING_MODELS)


def _require_cornac():
    try:
        import cornac
    except ImportError as exc:
        raise ImportError("the parity harness compares with cornac: pip install -e '.[cornac]' (cornac==3.0.1)") from exc
    return cornac


# ---------------------------------------------------------------------------- data
def rating_data(cfg: ParityConfig, data_dir=None):
    from .data import dataset_files, load_reviews

    df = load_reviews(cfg.rating_dataset, data_dir)
    u = df["user"].astype("category").cat.codes.to_numpy()
    i = df["item"].astype("category").cat.codes.to_numpy()
    docs = df.groupby(i)["text"].apply(lambda t: " ".join(t)).reindex(range(i.max() + 1), fill_value="").tolist()
    return u, i, df["rating"].to_numpy(float), docs, dataset_files(cfg.rating_dataset, data_dir)


def ranking_data(cfg: ParityConfig, data_dir=None):
    from .data import dataset_files, load_citeulike
    from .data.splits import per_user_holdout

    d = load_citeulike(cfg.ranking_dataset, data_dir, min_user_likes=5)
    train, test, _ = per_user_holdout(d.likes, 0.8, min_positives=0, seed=cfg.seed)
    rows = np.repeat(np.arange(len(train)), [len(t) for t in train])
    X = sp.csr_matrix((np.ones(len(rows)), (rows, np.concatenate(train))), shape=(len(train), d.n_items))
    return X, test, d.bow, d.vocabulary, dataset_files(cfg.ranking_dataset, data_dir)


def _bow_docs(bow: sp.csr_matrix, vocabulary: list[str]) -> list[str]:
    """Pseudo-documents with each word repeated by its count, so cornac's TextModality sees the same bag of words."""
    docs = []
    for r in range(bow.shape[0]):
        lo, hi = bow.indptr[r], bow.indptr[r + 1]
        docs.append(" ".join(" ".join([vocabulary[w]] * int(c)) for w, c in zip(bow.indices[lo:hi], bow.data[lo:hi])))
    return docs


# ---------------------------------------------------------------------------- one unit
def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``fn()``, its wall seconds and its CPU seconds (this process, all threads: a fair measure on a busy machine)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def rating_unit(model: str, impl: str, cfg: ParityConfig, u, i, r, docs, train, test) -> dict[str, float]:
    nu, ni = int(u.max()) + 1, int(i.max()) + 1
    if impl == "ours":
        from .data.feedback import Ratings
        from .models.hft import HFT
        from .models.rating_baselines import PMF, BiasedMF

        if model == "HFT":
            from sklearn.feature_extraction.text import CountVectorizer

            bow = CountVectorizer(max_features=8000, stop_words="english").fit_transform(
                pd.Series(docs).where(pd.Series(range(ni)).isin(np.unique(i[train])), ""))
            fit = lambda: HFT(k=cfg.k, seed=cfg.seed).fit(Ratings(u[train], i[train], r[train], nu, ni, item_bow=bow))  # noqa: E731
        else:
            make = {"PMF": lambda: PMF(k=cfg.k, seed=cfg.seed), "Biased MF": lambda: BiasedMF(k=cfg.k, seed=cfg.seed)}[model]
            fit = lambda: make().fit(Ratings(u[train], i[train], r[train], nu, ni))  # noqa: E731
        m, fit_s, fit_cpu_s = _timed(fit)
        pred, pred_train = m.predict(u[test], i[test]), m.predict(u[train], i[train])
    else:
        cornac = _require_cornac()
        from cornac.data import Dataset, TextModality

        triples = list(zip(u[train].astype(str), i[train].astype(str), r[train]))
        ds = Dataset.from_uir(triples, seed=cfg.seed)
        if model == "HFT":
            item_ids = [str(x) for x in range(ni)]
            text = TextModality(corpus=docs, ids=item_ids, max_vocab=8000, max_doc_freq=0.5)
            text.build(id_map=ds.iid_map)
            ds.add_modalities(item_text=text)
        make = {"PMF": lambda: cornac.models.PMF(k=cfg.k, seed=cfg.seed, verbose=False),
                "Biased MF": lambda: cornac.models.MF(k=cfg.k, seed=cfg.seed, verbose=False),
                "HFT": lambda: cornac.models.HFT(k=cfg.k, max_iter=cfg.hft_iter, seed=cfg.seed, verbose=False)}[model]
        m, fit_s, fit_cpu_s = _timed(lambda: make().fit(ds))

        def predict(idx: np.ndarray) -> np.ndarray:
            return np.array([m.score(ds.uid_map[str(a)], ds.iid_map[str(b)]) if str(a) in ds.uid_map and str(b) in ds.iid_map
                             else m.default_score() for a, b in zip(u[idx], i[idx])], dtype=float).ravel()

        pred, pred_train = predict(test), predict(train)
    # the training error tells an under-fitted model from an over-fitted one when the two disagree
    return {"MSE": float(np.mean((pred - r[test]) ** 2)), "train MSE": float(np.mean((pred_train - r[train]) ** 2)),
            "fit_s": fit_s, "fit_cpu_s": fit_cpu_s}


def ranking_unit(model: str, impl: str, cfg: ParityConfig, X: sp.csr_matrix, test, bow, vocabulary) -> dict[str, float]:
    if impl == "ours":
        from .data.feedback import Interactions
        from .models.ctr import CTR
        from .models.ncf import NCF
        from .models.ranking_baselines import BPR

        # a fixed number of epochs, no validation split: the same budget as cornac's
        likes = Interactions(X, item_bow=bow)
        make = {"BPR": lambda: BPR(k=cfg.bpr_k, lr=cfg.bpr_lr, reg=cfg.bpr_reg, epochs=cfg.bpr_iter, seed=cfg.seed).fit(likes),
                "NeuMF": lambda: NCF(k=8, layers=(64, 32, 16, 8), epochs=cfg.neumf_epochs, loss="bpr", seed=cfg.seed).fit(likes),
                "CTR": lambda: CTR(k=cfg.ctr_k, lambda_u=0.01, lambda_v=0.01, max_iter=cfg.ctr_iter, seed=cfg.seed).fit(likes)}[model]
        m, fit_s, fit_cpu_s = _timed(make)
        score = m.score
    else:
        cornac = _require_cornac()
        from cornac.data import Dataset, TextModality

        rows, cols = X.nonzero()
        ds = Dataset.from_uir(list(zip(rows.astype(str), cols.astype(str), np.ones(len(rows)))), seed=cfg.seed)
        if model == "CTR":
            text = TextModality(corpus=_bow_docs(bow, vocabulary), ids=[str(x) for x in range(X.shape[1])], max_vocab=len(vocabulary))
            text.build(id_map=ds.iid_map)
            ds.add_modalities(item_text=text)
        make = {"BPR": lambda: cornac.models.BPR(k=cfg.bpr_k, max_iter=cfg.bpr_iter, learning_rate=cfg.bpr_lr,
                                                 lambda_reg=cfg.bpr_reg, seed=cfg.seed, verbose=False),
                "NeuMF": lambda: cornac.models.NeuMF(num_factors=8, layers=(64, 32, 16, 8), num_epochs=cfg.neumf_epochs,
                                                     backend="pytorch", seed=cfg.seed, verbose=False),
                "CTR": lambda: cornac.models.CTR(k=cfg.ctr_k, max_iter=cfg.ctr_iter, seed=cfg.seed, verbose=False)
                if "seed" in cornac.models.CTR.__init__.__code__.co_varnames else cornac.models.CTR(k=cfg.ctr_k, max_iter=cfg.ctr_iter, verbose=False)}[model]
        m, fit_s, fit_cpu_s = _timed(lambda: make().fit(ds))
        inner_items = np.array([ds.iid_map.get(str(j), -1) for j in range(X.shape[1])])

        def score(users):
            out = np.full((len(users), X.shape[1]), -np.inf)
            for r_, uu in enumerate(users):
                if str(uu) in ds.uid_map:
                    s = m.score(ds.uid_map[str(uu)])
                    known = inner_items >= 0
                    out[r_, known] = s[inner_items[known]]
            return out
    users = np.arange(X.shape[0])
    recalls = {50: [], 100: []}
    for s in range(0, len(users), 500):
        b = users[s:s + 500]
        top = R.topk_items(score(b), 100, exclude=X[b])
        rel = [test[x] for x in b]
        for k in recalls:
            recalls[k].append(R.recall_at_k(top, rel, k))
    return {"Recall@50": R.mean_over_users(np.concatenate(recalls[50])),
            "Recall@100": R.mean_over_users(np.concatenate(recalls[100])), "fit_s": fit_s, "fit_cpu_s": fit_cpu_s}


# ---------------------------------------------------------------------------- harness
def run_parity(cfg: ParityConfig, units_dir: str | Path, results_dir=None, data_dir=None) -> Path:
    """Run every (model, implementation, fold) unit, rewriting the record after each one."""
    from .data.splits import kfold

    # the model list is left out of the fingerprint: running a subset reuses the finished units of the others
    store = UnitStore(units_dir, {k: v for k, v in asdict(cfg).items() if k != "models"}, code_scope="parity")
    rec = RunRecorder("parity", config=asdict(cfg), scale="full", dataset=f"{cfg.rating_dataset}+{cfg.ranking_dataset}",
                      seed=cfg.seed, results_dir=results_dir)
    results: dict[tuple[str, str], list[dict[str, float]]] = {}

    def write() -> Path:
        rec.metrics, rows = [], []
        for model in cfg.models:
            ours, theirs = results.get((model, "ours"), []), results.get((model, "cornac"), [])
            n = min(len(ours), len(theirs))
            if not n:
                continue
            metrics = ["MSE"] if model in RATING_MODELS else ["Recall@50", "Recall@100"]
            ds = cfg.rating_dataset if model in RATING_MODELS else cfg.ranking_dataset
            for metric in metrics:
                for impl, res in (("ours", ours[:n]), ("cornac", theirs[:n])):
                    rec.add_metric(MetricRow.from_values("parity", ds, f"{model} ({impl})", metric, [x[metric] for x in res]))
                o, c = np.mean([x[metric] for x in ours[:n]]), np.mean([x[metric] for x in theirs[:n]])
                of, cf = np.mean([x["fit_s"] for x in ours[:n]]), np.mean([x["fit_s"] for x in theirs[:n]])
                row = {"model": model, "dataset": ds, "metric": metric, "folds": n, "ours": o, "cornac": c,
                       "gap": o - c, "ours_fit_s": of, "cornac_fit_s": cf, "speed_ratio": cf / max(of, 1e-9)}
                if all("train MSE" in x for x in ours[:n] + theirs[:n]):
                    row["ours_train_MSE"] = np.mean([x["train MSE"] for x in ours[:n]])
                    row["cornac_train_MSE"] = np.mean([x["train MSE"] for x in theirs[:n]])
                rows.append(row)
        rec.add_table("parity", rows)
        return rec.finish()

    u, i, r, docs, files = rating_data(cfg, data_dir)
    rec.add_data_files(files)
    folds = kfold(len(r), cfg.folds, cfg.seed)
    for model in [m for m in cfg.models if m in RATING_MODELS]:
        n_folds = cfg.hft_folds if model == "HFT" else cfg.folds
        for f, (tr, te) in enumerate(folds[:n_folds]):
            for impl in ("ours", "cornac"):
                log.info("parity: %s %s fold %d", model, impl, f)
                res = store.run(f"{model}/{impl}/fold{f}", lambda: rating_unit(model, impl, cfg, u, i, r, docs, tr, te))
                results.setdefault((model, impl), []).append(res)
            write()
    X, test, bow, vocabulary, files2 = ranking_data(cfg, data_dir)
    rec.add_data_files(files2)
    for model in [m for m in cfg.models if m in RANKING_MODELS]:
        for impl in ("ours", "cornac"):
            log.info("parity: %s %s", model, impl)
            res = store.run(f"{model}/{impl}", lambda: ranking_unit(model, impl, cfg, X, test, bow, vocabulary))
            results.setdefault((model, impl), []).append(res)
        write()
    return write()


def parity_table(record: dict[str, Any]) -> pd.DataFrame:
    """The side-by-side table of a parity record (model, dataset, metric, ours, cornac, gap, fit times, speed ratio)."""
    return pd.DataFrame(record.get("tables", {}).get("parity", []))
