"""The units of work of "Ask the GRU": one (scenario, fold, model) fit and its evaluation, resumably.

Every model is built from the registry (:func:`xrec_core.models.registry.build`) with the
chapter config's values (and, when a tuning study has run, its best parameters). The neural
models (GRU, Embed and their ``-MTL`` variants) train through :class:`xrec_core.training.Trainer`
to early stopping on the fold's validation Recall@50; CTR / CTR-MTL run ALS on LDA topics; the
warm-start baselines are MostPop and BPR (issue 9).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from ...data.feedback import Interactions
from ...metrics.ranking import recall_at_k, recall_curve
from ...models.gru import TextRecData, TextRecommender, pretrain_cbow, reciprocal_hit_rank, topk_from_factors
from ...models.registry import build
from ...records import UnitStore
from ..common import units_dir
from .config import BASELINES, CTR_MODELS, M_MAX, NEURAL, SCENARIOS, GRUConfig
from .data import Fold, GRUData, testable_models

log = logging.getLogger(__name__)

#: search-space names whose config field differs by model (the GRU's size has its own field)
_GRU_FIELDS = {"k": "k_gru"}


def config_field(model: str, param: str) -> str:
    """The config field that holds ``model``'s tuned parameter ``param``."""
    if model.startswith("GRU"):
        return _GRU_FIELDS.get(param, param)
    if model in CTR_MODELS:
        return "lam" if param == "tag_weight" else f"ctr_{param}"
    if model == "BPR":
        return f"bpr_{param}"
    return param


def with_tuned(cfg: GRUConfig, model: str, tuned: dict[str, Any] | None) -> GRUConfig:
    """``cfg`` with ``model``'s tuned parameters (from its study) in their config fields."""
    import dataclasses

    if not tuned:
        return cfg
    return dataclasses.replace(cfg, **{config_field(model, p): v for p, v in tuned.items()})


# --------------------------------------------------------------------------- building models
def text_model_params(name: str, cfg: GRUConfig, seed: int) -> dict[str, Any]:
    """The registry parameters of GRU / Embed (and ``-MTL``) from the config."""
    gru = name.startswith("GRU")
    return dict(k=cfg.k_gru if gru else cfg.k, k_h1=cfg.k_h1, dropout_emb=cfg.dropout_emb, dropout_h1=cfg.dropout_h1,
                dropout_h2=cfg.dropout_h2, lam=cfg.lam, alpha=cfg.alpha, eps=cfg.eps, tag_neg_weight=cfg.tag_neg_weight,
                user_reg=cfg.user_reg, batch_users=cfg.batch_users, lr=cfg.lr, max_updates=cfg.max_updates,
                updates_per_epoch=cfg.updates_per_epoch, patience=cfg.patience, seed=seed, device=cfg.device)


def pretrained_embeddings(data: GRUData, cfg: GRUConfig, k: int) -> np.ndarray | None:
    """CBOW word vectors (gensim) of size ``k`` trained on the items' text (the paper pre-trains on ACM abstracts).

    The context window is ``cbow_window`` on ordered text and ``cbow_window_unordered`` on bags of
    words, where any two words of a document co-occur.
    """
    if not cfg.cbow:
        return None
    window = cfg.cbow_window if data.ordered else cfg.cbow_window_unordered
    return pretrain_cbow(data.sentences, data.itos, k=k, window=window, epochs=cfg.cbow_epochs, seed=cfg.seed)


def text_train_data(fold: Fold, data: GRUData, mtl: bool) -> TextRecData:
    """A fold's training data for the text recommenders (cold start: the test items' tags are hidden)."""
    tag_items = fold.known if fold.scenario == "cold" else np.ones(data.n_items, bool)
    return TextRecData(fold.train, data.tokens, len(data.itos), known=fold.known, tags=data.tags if mtl else None,
                       tag_items=tag_items)


def fit_text_model(name: str, fold: Fold, data: GRUData, cfg: GRUConfig, pretrained: np.ndarray | None,
                   on_epoch=None) -> TextRecommender:
    """Build ``name`` from the registry and train it on ``fold`` to early stopping on its validation split."""
    model = build(name, pretrained=pretrained, **text_model_params(name, cfg, cfg.seed + fold.index))
    return model.fit(text_train_data(fold, data, model.mtl), fold.valid, on_epoch=on_epoch)


def fit_ctr(name: str, fold: Fold, data: GRUData, cfg: GRUConfig, theta: np.ndarray):
    """CTR or CTR-MTL (``xrec_core.models.ctr``, LDA topics fixed, ALS) on a fold's training likes."""
    params = dict(k=cfg.ctr_k, lambda_u=cfg.ctr_lambda_u, lambda_v=cfg.ctr_lambda_v, a=cfg.ctr_a, b=cfg.ctr_b,
                  max_iter=cfg.ctr_max_iter, lda_iter=cfg.ctr_lda_iter, seed=cfg.seed + fold.index, theta=theta)
    if name == "CTR-MTL":
        tag_items = fold.known if fold.scenario == "cold" else np.ones(data.n_items, bool)
        params.update(tags=sp.diags(tag_items.astype(float)) @ data.tags, tag_weight=cfg.lam)
    return build(name, **params).fit(Interactions(fold.train, item_bow=data.bow))


def fit_bpr(fold: Fold, cfg: GRUConfig):
    """BPR on the fold's training likes, early-stopped on its validation Recall@50 (``bpr_epochs`` the cap)."""
    held_out = Interactions.from_lists(fold.valid.users, fold.valid.relevant, *fold.train.shape)
    return build("BPR", k=cfg.bpr_k, lr=cfg.bpr_lr, reg=cfg.bpr_reg, epochs=cfg.bpr_epochs, patience=cfg.patience,
                 eval_k=50, seed=cfg.seed + fold.index).fit(Interactions(fold.train), held_out)


# --------------------------------------------------------------------------- evaluation
def evaluate_topk(top: np.ndarray, fold: Fold) -> dict[str, Any]:
    """Recall@M (M = 1..100), mean Recall@50 and HR@10 over the fold's test users from their top-100 lists."""
    if top.shape[1] < M_MAX:  # fewer candidates than M: Recall@M stays at Recall@|candidates|
        top = np.pad(top, ((0, 0), (0, M_MAX - top.shape[1])), constant_values=-1)
    curve = recall_curve(top, fold.test_relevant, list(range(1, M_MAX + 1)))
    per_user = recall_at_k(top, fold.test_relevant, 50)
    return {"recall_curve": [float(x) for x in curve], "recall50": float(np.nanmean(per_user)),
            "hr10": float(np.mean(reciprocal_hit_rank(top, fold.test_relevant, 10))), "n_users": int(len(fold.test_users))}


def valid_recall(top: np.ndarray, fold: Fold) -> float:
    """Mean Recall@50 of ``top`` (rows = ``fold.valid.users``) on the fold's validation likes."""
    return float(np.nanmean(recall_at_k(top, fold.valid.relevant, 50)))


def tag_recall(scores: np.ndarray, tags: sp.csr_matrix, items: np.ndarray, k: int = 50) -> float:
    """Mean per-article Recall@k of the tags ranked by ``scores`` ``(len(items), n_tags)``; articles without tags skipped."""
    rel = [tags.indices[tags.indptr[j]:tags.indptr[j + 1]] for j in items]
    keep = [i for i, r in enumerate(rel) if len(r)]
    if not keep:
        return float("nan")
    s = scores[keep]
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return float(np.nanmean(recall_at_k(top, [rel[i] for i in keep], k)))


def _topk_scores(score, users: np.ndarray, exclude: sp.csr_matrix, k: int) -> np.ndarray:
    """Top-``k`` items per user from ``score(users) -> (b, n_items)``, ``exclude`` (rows = users) masked out."""
    tops = []
    for s in range(0, len(users), 1024):
        b = users[s:s + 1024]
        scores = np.asarray(score(b), dtype=np.float64)  # (b, n_items)
        ex = exclude[s:s + 1024].tocoo()
        scores[ex.row, ex.col] = -np.inf
        tops.append(np.argsort(-scores, axis=1, kind="stable")[:, :k])
    return np.concatenate(tops) if tops else np.zeros((0, k), np.int64)


# --------------------------------------------------------------------------- units
def run_neural(name: str, fold: Fold, data: GRUData, cfg: GRUConfig, pretrained: np.ndarray | None) -> dict[str, Any]:
    """Train one GRU/Embed model on a fold and evaluate it (one resumable unit)."""
    t0 = time.perf_counter()
    model = fit_text_model(name, fold, data, cfg, pretrained)
    fit_s = time.perf_counter() - t0
    excl = fold.exclude[fold.test_users] if fold.exclude is not None else None
    top = model.topk(fold.test_users, M_MAX, candidates=fold.candidates, exclude=excl)
    out = evaluate_topk(top, fold)
    out.update(fit_s=fit_s, updates=model.n_updates, best_valid=model.best_valid_recall, curve=model.curve.as_dict())
    if model.mtl and fold.scenario == "cold":
        out["tag_recall50"] = tag_recall(model.tag_scores(fold.candidates), data.tags, fold.candidates)
    if fold.index == 0 and fold.scenario == "warm" and cfg.n_saliency:
        out["saliency"] = saliency_examples(model, fold, data, top, cfg.n_saliency)
    return out


def saliency_examples(model: TextRecommender, fold: Fold, data: GRUData, top: np.ndarray, n: int) -> list[dict[str, Any]]:
    """Figure 2: for ``n`` users, the saliency ``||d r_ij / d e_jt||`` of each word of their top-1 item."""
    rng = np.random.default_rng(0)
    picks = rng.choice(len(fold.test_users), size=min(n, len(fold.test_users)), replace=False)
    rows = []
    for p in sorted(picks):
        user, item = int(fold.test_users[p]), int(top[p, 0])
        tok = data.tokens[item]
        tok = tok[tok != 0]
        sal = model.saliency(user, item)
        rows.append({"user": user, "item": item, "words": [data.itos[t] for t in tok],
                     "saliency": [float(s) for s in sal], "liked": bool(item in set(fold.test_relevant[p].tolist()))})
    return rows


_THETA_CACHE: dict[tuple, np.ndarray] = {}


def lda_theta(data: GRUData, cfg: GRUConfig) -> np.ndarray:
    """CTR's topic proportions: one LDA fit on the items' text only (Sec. 4.1.2), shared by all units."""
    from ...models.ctr import lda_topics

    key = (data.name, data.bow.shape, data.bow.nnz, cfg.ctr_k, cfg.ctr_lda_iter, cfg.seed)
    if key not in _THETA_CACHE:
        _THETA_CACHE[key] = lda_topics(data.bow, cfg.ctr_k, cfg.ctr_lda_iter, cfg.seed)
    return _THETA_CACHE[key]


def run_ctr(name: str, fold: Fold, data: GRUData, cfg: GRUConfig) -> dict[str, Any]:
    """Fit CTR or CTR-MTL on a fold and evaluate it; cold items use their topics alone (Wang & Blei, eq. 9)."""
    t0 = time.perf_counter()
    model = fit_ctr(name, fold, data, cfg, lda_theta(data, cfg))
    fit_s = time.perf_counter() - t0
    cold_items = np.flatnonzero(~fold.known)
    V = model.item_vectors(cold_items=cold_items)  # (n_items, K)
    U = model.user_vectors()  # (n_users, K)
    excl = fold.exclude[fold.test_users] if fold.exclude is not None else None
    top = topk_from_factors(U[fold.test_users], V, np.zeros(data.n_items), M_MAX, candidates=fold.candidates, exclude=excl)
    out = evaluate_topk(top, fold)
    out.update(fit_s=fit_s)
    if name == "CTR-MTL" and fold.scenario == "cold":
        out["tag_recall50"] = tag_recall(np.asarray(model.score_tags(fold.candidates, cold_items=cold_items)),
                                         data.tags, fold.candidates)
    return out


def run_baseline(name: str, fold: Fold, data: GRUData, cfg: GRUConfig) -> dict[str, Any]:
    """MostPop or BPR (issue 9) on a warm-start fold."""
    t0 = time.perf_counter()
    model = build("MostPop").fit(Interactions(fold.train)) if name == "MostPop" else fit_bpr(fold, cfg)
    top = _topk_scores(model.score, fold.test_users, fold.exclude[fold.test_users], M_MAX)
    out = evaluate_topk(top, fold)
    out.update(fit_s=time.perf_counter() - t0)
    return out


def unit_fingerprint(cfg: GRUConfig) -> dict[str, Any]:
    """The settings a unit's result depends on: not the model list or the number of folds run (a rerun
    with more models or folds reuses finished units) nor how many threads ran (:class:`UnitStore` itself
    leaves out where data and results live)."""
    skip = ("models", "baselines", "folds_run", "n_threads", "device", "tune_trials")
    return {k: v for k, v in cfg.as_dict().items() if k not in skip}


def compute_unit(name: str, fold: Fold, data: GRUData, cfg: GRUConfig, pretrained) -> dict[str, Any]:
    """One unit's result; ``pretrained(k)`` gives the CBOW vectors of size ``k`` (computed on first use)."""
    if name in NEURAL:
        return run_neural(name, fold, data, cfg, pretrained(cfg.k_gru if name.startswith("GRU") else cfg.k))
    if name in CTR_MODELS:
        return run_ctr(name, fold, data, cfg)
    return run_baseline(name, fold, data, cfg)


def run_protocol(cfg: GRUConfig, data: GRUData, folds: list[Fold], store: UnitStore | None = None,
                 progress: bool = True, tuned: dict[str, dict[str, Any]] | None = None,
                 compute=compute_unit, executor: str = "serial",
                 address: str | None = None) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Run every (scenario, fold, model) unit, resumably: ``{scenario: {model: [per-fold results]}}``.

    A unit that raises is logged and listed under ``results["crashed"]`` (``{unit key: error}``);
    its model then lacks that fold, which makes every claim naming it untestable.

    ``tuned`` maps a model to its tuning study's best parameters (they replace the config's values
    for that model); ``compute`` computes one unit (tests pass a counting wrapper). ``executor`` /
    ``address``: where the units run (:func:`xrec_core.executor.run_units`).
    """
    from ...executor import Unit, run_units, unit_resources

    store = store or UnitStore(units_dir("gru", cfg), unit_fingerprint(cfg), code_scope="experiments.gru")
    models = testable_models(cfg, data)
    pairs = [(f, m) for f in folds for m in models]
    if cfg.baselines:
        pairs += [(f, b) for f in folds if f.scenario == "warm" for b in BASELINES]
    planned = []
    for fold, name in pairs:
        key = f"{fold.scenario}/fold{fold.index}/{name}"
        best = (tuned or {}).get(name)
        if best:  # tuned parameters are part of what the unit computed
            key += "/tuned-" + hashlib.sha256(json.dumps(best, sort_keys=True).encode()).hexdigest()[:8]
        planned.append((key, fold, name, with_tuned(cfg, name, best)))
    # CBOW vectors once, here, and only when a neural unit still has to train (shared by every unit)
    sizes = {c.k_gru if n.startswith("GRU") else c.k for key, _, n, c in planned if n in NEURAL and not store.done(key)}
    pretrained = {k: pretrained_embeddings(data, cfg, k) for k in sorted(sizes)}.__getitem__
    resources = unit_resources(cfg.n_threads, cfg.device)
    units = [Unit(key, compute, (name, fold, data, unit_cfg, pretrained), resources)
             for key, fold, name, unit_cfg in planned]
    run = run_units(store, units, executor=executor, address=address, progress=progress, errors="collect")
    results: dict[str, Any] = {s: {} for s in SCENARIOS}
    results["crashed"] = dict(run.failed)
    for key, fold, name, _ in planned:
        if key in run.results:
            res = run.results[key]
            log.info("%s: Recall@50 %.4f HR@10 %.4f", key, res["recall50"], res["hr10"])
            results[fold.scenario].setdefault(name, []).append(res)
    return results
