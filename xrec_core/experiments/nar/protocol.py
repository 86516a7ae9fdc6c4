"""NAR / CAR / CNR (paper 004): the protocol of Sec. 5 on the data present here.

Every (seed, model) pair is one resumable unit (:func:`xrec_core.experiments.common.unit_store`):
the model is trained on the seed's split (early-stopped on a validation positive per user carved
from the training positives), then ranks each test user's positives among 100 sampled
candidates (Precision, Recall, F1, hit rate, NDCG at 10 and MRR at 1; Tables 4-8). An explainer's
unit also holds its Table 3 metrics (Eq. 10, over all users) and the explanation vectors of a
fixed sample of users (Figs. 4-5, Table 9), so a unit stays well under 1 MB.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ...data.feedback import Interactions
from ...metrics import ranking as R
from ...records import RunRecorder
from ...training import phase_curves
from ..common import unit_store, units_dir
from .config import EXPLAINERS, EXTRA_MODELS, LEARNED_MODELS, PAPER_MODELS, NARConfig, bpr_params, ranker_params
from .data import NARData, explain_sample, prepare, reviews_with_mentions, validation_split

log = logging.getLogger(__name__)

PAPER = "nar"


def ranking_metrics(scores_pos_first: np.ndarray, n_pos: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-user metrics when each row holds the user's positives first, then the candidates."""
    top = np.argsort(-scores_pos_first, axis=1, kind="stable")[:, : max(k, 1)]
    relevant = [np.arange(n) for n in n_pos]
    return {"Precision": R.precision_at_k(top, relevant, k), "Recall": R.recall_at_k(top, relevant, k),
            "F1": R.f1_at_k(top, relevant, k), "Hit Rate": R.hit_at_k(top, relevant, k),
            "NDCG": R.ndcg_at_k(top, relevant, k), "MRR": R.mrr_at_k(top, relevant, 1)}


def candidate_pools(data: NARData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pools, n_pos, real)``: per test user its positives then its candidates, padded by a repeated negative.

    ``real`` (n_test_users, width) marks the columns that are not padding.
    """
    width = max(len(t) for t in data.test_items) + data.candidates.shape[1]
    pools = np.empty((len(data.test_users), width), dtype=np.int64)
    n_pos = np.array([len(t) for t in data.test_items])
    for r, (t, c) in enumerate(zip(data.test_items, data.candidates)):
        row = np.concatenate([t, c])
        pools[r] = np.concatenate([row, np.full(width - len(row), c[0])])
    real = np.arange(width)[None, :] < (n_pos + data.candidates.shape[1])[:, None]
    return pools, n_pos, real


def explanation_metrics(phi: np.ndarray, gt: list[np.ndarray], k: int) -> dict[str, float]:
    """Eq. 10: top-k features of each user's explanation vector against the user's sentiment features."""
    users = [u for u, g in enumerate(gt) if len(g)]
    top = R.topk_items(phi[users], k)
    rel = [gt[u] for u in users]
    return {"Precision": float(np.mean(R.precision_at_k(top, rel, k))), "Recall": R.mean_over_users(R.recall_at_k(top, rel, k)),
            "F1": float(np.mean(R.f1_at_k(top, rel, k))), "NDCG": R.mean_over_users(R.ndcg_at_k(top, rel, k))}


def encode_matrix(x: np.ndarray) -> dict[str, Any]:
    """A float matrix as JSON: shape and little-endian float32 bytes in base64.

    float32, not float16: NAR's attention rows stay close to uniform (1/P), and the differences
    that rank its features are below float16's resolution.
    """
    return {"shape": list(x.shape), "float32": base64.b64encode(np.asarray(x, dtype="<f4").tobytes()).decode("ascii")}


def decode_matrix(stored: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_matrix` (as float64)."""
    return np.frombuffer(base64.b64decode(stored["float32"]), dtype="<f4").reshape(stored["shape"]).astype(np.float64)


def _device(cfg: NARConfig) -> str:
    import torch

    return "cuda" if cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available()) else "cpu"


def search_space(name: str) -> dict[str, Any]:
    """The tuning study's dimensions of a learned model (its registry entry's; NCF's is the chapter rankers')."""
    from ...models.nar.models import NCF_SEARCH_SPACE
    from ...models.registry import entry

    if name == "NCF":
        return dict(NCF_SEARCH_SPACE)
    return dict(entry("BPR" if name == "BPR (tuned)" else name).search_space)


def fit_learned(name: str, train: Any, valid: Any, cfg: NARConfig, seed: int, params: dict[str, Any] | None = None,
                on_epoch: Any = None) -> Any:
    """Build ``name`` from the config (and tuned ``params``) and fit it on ``train`` (early-stopped on ``valid``)."""
    from ...models.nar.models import RANKERS
    from ...models.registry import build

    if name == "BPR (tuned)":  # early-stopped on the held-out positives (column 0 of the validation pools)
        held_out = Interactions.from_lists(valid.users, valid.pools[:, :1], *train.interactions.shape)
        return build("BPR", **bpr_params(cfg, seed, **(params or {}))).fit(Interactions(train.interactions), held_out)
    return RANKERS[name](**ranker_params(cfg, seed, _device(cfg), **(params or {}))).fit(train, valid, on_epoch=on_epoch)


def run_model(name: str, data: NARData, cfg: NARConfig, seed: int, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train one model on the seed's split and evaluate ranking (and explanations for NAR/CAR/CNR).

    ``params``: the tuning study's best values, overriding the config's.
    """
    from ...models.registry import build

    t0 = time.perf_counter()
    pools, n_pos, real = candidate_pools(data)
    out: dict[str, Any] = {"params": dict(params or {})}
    train, valid = validation_split(data, cfg, seed)
    if name == "MostPop":
        scores = build("MostPop").fit(Interactions(data.train)).score(data.test_users, pools)
    elif name == "BPR (tuned)":
        model = fit_learned(name, train, valid, cfg, seed, params)
        scores = np.take_along_axis(model.score(data.test_users), pools, axis=1)
    else:
        model = fit_learned(name, train, valid, cfg, seed, params)
        scores = model.score_candidates(data.test_users, pools)
        out["learning_curves"] = phase_curves(model)
        if model.flip_rates:
            out["flip_rates"] = [float(x) for x in model.flip_rates]
        if name in EXPLAINERS:
            out["explain"] = explanation_metrics(model.explanations(np.arange(data.n_users)), data.ground_truth,
                                                 cfg.explain_k)
            users = explain_sample(data, cfg.explain_users, seed)
            out["explained_users"] = users.tolist()
            out["explanations"] = encode_matrix(model.explanations(users))
    per_user = ranking_metrics(np.where(real, scores, -np.inf), n_pos, cfg.k)
    out["ranking"] = {m: float(np.nanmean(v)) for m, v in per_user.items()}
    out["fit_s"] = time.perf_counter() - t0
    # passes over the training positives: every phase's epochs (BPR: its configured epochs; MostPop: one count)
    epochs = (sum(c["epochs"] for c in out.get("learning_curves", {}).values())
              or (bpr_params(cfg, seed, **(params or {}))["epochs"] if name == "BPR (tuned)" else 1))
    out["examples_per_s"] = float(train.interactions.nnz * epochs / max(out["fit_s"], 1e-9))
    return out


def seeded_unit(name: str, data: NARData, cfg: NARConfig, seed: int, params: dict[str, Any] | None) -> dict[str, Any]:
    """One (seed, model) unit, seeded by itself so that it gives the same result in any process."""
    from ...device import set_seed

    set_seed(seed)
    log.info("seed %d: %s", seed, name)
    return run_model(name, data, cfg, seed, params)


def run_protocol(cfg: NARConfig, recorder: RunRecorder, units_root: str | Path | None = None,
                 data: NARData | None = None, executor: str = "serial", address: str | None = None) -> dict[str, Any]:
    """All models x seeds (resumable: one unit per (seed, model)); fills the recorder; returns the results.

    ``data``, when given, is the prepared split of the first seed (``prepare(cfg, cfg.seed)``). A
    unit that raises is logged, noted in the record and left out (its model's claims become
    untestable); the other units still run. ``executor`` / ``address``: where the units run
    (:func:`xrec_core.executor.run_units`; ``"ray"`` spreads them over a local Ray or the cluster at ``address``).
    """
    from ...device import set_threads
    from ...executor import Unit, run_units, unit_resources
    from .report import record_results

    set_threads(cfg.n_threads)
    tuned = tuned_params(cfg)
    # the tuned values decide what a unit computes: they are part of its fingerprint
    store = unit_store(PAPER, asdict(cfg) | {"tuned": tuned}, units_root or units_dir(PAPER, cfg))
    models = PAPER_MODELS + EXTRA_MODELS
    seeds = [cfg.seed + s for s in range(cfg.n_seeds)]
    mentions = reviews_with_mentions(cfg) if cfg.n_seeds > 1 or data is None else None
    split = {seed: data if s == 0 and data is not None else prepare(cfg, seed, mentions) for s, seed in enumerate(seeds)}
    resources = unit_resources(cfg.n_threads, cfg.device)
    units = [Unit(f"seed{seed}/{name}", seeded_unit, (name, split[seed], cfg, seed, tuned.get(name)), resources)
             for seed in seeds for name in models]
    run = run_units(store, units, executor=executor, address=address, progress=cfg.progress, errors="collect")
    results: dict[str, list[dict[str, Any] | None]] = {m: [run.results.get(f"seed{seed}/{m}") for seed in seeds]
                                                       for m in models}
    for key, error in run.failed.items():  # a crashed unit is reported, never silently dropped
        seed, name = key.split("/", 1)
        recorder.note(f"crashed: {name} (seed {seed.removeprefix('seed')}): {error}; its rows and the claims naming it "
                      "are missing or untestable")
    data0 = split[cfg.seed]
    recorder.add_data_files(data0.files)
    _record_tuning(recorder, cfg, tuned)
    figures = record_results(recorder, results, data0, cfg)
    return {"results": results, "data": data0, "figures": figures}


# --------------------------------------------------------------------------- tuning (xrec tune nar)
def tuned_params(cfg: NARConfig) -> dict[str, dict[str, Any]]:
    """The stored best parameters of every learned model that has a completed study (at this scale and dataset)."""
    from ...tuning import best_params

    out = {}
    for name in LEARNED_MODELS:
        best = best_params(PAPER, cfg.dataset, name, cfg.results_dir or None, cfg.scale)
        if best:
            out[name] = best
    return out


def _record_tuning(recorder: RunRecorder, cfg: NARConfig, tuned: dict[str, dict[str, Any]]) -> None:
    from ...tuning import tuning_summary

    for name in tuned:
        recorder.add_tuning(name, tuning_summary(PAPER, cfg.dataset, name, cfg.results_dir or None, cfg.scale))
    untuned = [m for m in LEARNED_MODELS if m not in tuned]
    recorder.add_untuned(untuned)


def tune_models(cfg: NARConfig, models: list[str] | None = None, n_trials: int | None = None,
                data: NARData | None = None) -> dict[str, Any]:
    """``xrec tune nar``: one Optuna study per learned model, the same budget (``cfg.tune_trials``) for each.

    Every trial trains on the first seed's training positives minus the validation positives and
    is scored by validation NDCG@k (:func:`~xrec_core.experiments.nar.data.validation_split`;
    the test fold is never read); the neural rankers report each base epoch for pruning. ``data``:
    the first seed's prepared split (default: prepared from the config).
    """
    from ...models.nar.models import ndcg_of_first
    from ...tuning import convergence_check, tune

    unknown = sorted(set(models or ()) - set(LEARNED_MODELS))
    if unknown:
        raise ValueError(f"Unknown model(s) {', '.join(unknown)} for nar; tunable: {', '.join(LEARNED_MODELS)}")
    data = data if data is not None else prepare(cfg, cfg.seed)
    train, valid = validation_split(data, cfg, cfg.seed)
    out = {}
    check = convergence_check(cfg.tune_converged_only)
    for name in models or LEARNED_MODELS:
        def objective(params: dict[str, Any], report: Any, name: str = name) -> float:
            model = fit_learned(name, train, valid, cfg, cfg.seed, params, on_epoch=report)
            check(phase_curves(model))
            scores = (np.take_along_axis(model.score(valid.users), valid.pools, axis=1) if name == "BPR (tuned)"
                      else model.score_candidates(valid.users, valid.pools))
            return ndcg_of_first(scores, valid.k)

        out[name] = tune(PAPER, cfg.dataset, name, objective, space=search_space(name), direction="maximize",
                         n_trials=n_trials or cfg.tune_trials, seed=cfg.seed, results_dir=cfg.results_dir or None,
                         scale=cfg.scale)
    return out
