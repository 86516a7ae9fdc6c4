"""Ours vs cornac, side by side in one process: fit CPU time and quality of the same model, over repeats.

For every peer model (PMF, biased MF and HFT on a fold of Amazon Musical Instruments; BPR, NeuMF
and CTR on the CiteULike-t 80/20 split, as in :mod:`xrec_core.parity`) the two implementations
are fitted alternately (ours then cornac on even repeats, cornac then ours on odd ones, each repeat
with its own seed), so that a change in the machine's load hits both alike. Speed is measured in
CPU seconds of this process (``time.process_time``: all threads, waiting excluded), never in
wall time, and each repeat gives one ratio ``cornac CPU s / ours CPU s`` (above 1: ours is
faster); the record's ``peers`` table gives their mean, standard deviation, minimum and maximum
with each implementation's mean quality (MSE or Recall@50) and its spread. Fits only are timed:
data loading, text modalities and scoring are outside the clock.

cornac is an optional extra (``pip install -e ".[cornac]"``, cornac 3.0.1); without it only ours
runs and the record says so. cornac's BPR runs on one thread whenever it is given a seed (its
Cython loop sets ``num_threads = 1``), as here; its BLAS and torch pools follow ``--threads``.
``--tiny`` runs every model at toy sizes on synthetic data in seconds (the smoke test does).
Usage::

    XREC_DATA=../shared/data python benchmarks/bench_peers.py --repeats 3 --threads 1
    python benchmarks/bench_peers.py --models BPR --repeats 5
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import BenchRecorder  # noqa: E402

from xrec_core.parity import RANKING_MODELS, RATING_MODELS, ParityConfig, ranking_unit, rating_unit  # noqa: E402

log = logging.getLogger("bench_peers")

TINY = dict(folds=3, k=4, hft_iter=2, ctr_k=4, ctr_iter=2, bpr_k=8, bpr_iter=2, neumf_epochs=1)


# ---------------------------------------------------------------------------------------------- data
def tiny_rating_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Users, items, ratings and one text per item of a synthetic 30 x 20 rating set."""
    rng = np.random.default_rng(seed)
    pairs = np.union1d(rng.choice(30 * 20, 250, replace=False), np.arange(30) * 20 + np.arange(30) % 20)
    u, i = pairs // 20, pairs % 20  # distinct pairs; every user and item rated at least once
    n = len(pairs)
    words = ["".join(rng.choice(list("bcdfghjklmnpqrstvwxz"), 7)) for _ in range(200)]  # letters only: cornac's tokenizer
    docs = [" ".join(rng.choice(words, 8)) for _ in range(20)]
    return u, i, rng.integers(1, 6, n).astype(float), docs


def tiny_ranking_data(seed: int = 0) -> tuple[sp.csr_matrix, list[np.ndarray], sp.csr_matrix, list[str]]:
    """Training likes (40 x 60), two held-out likes per user, item bags of words and their vocabulary."""
    rng = np.random.default_rng(seed)
    X = sp.random(40, 60, density=0.1, random_state=seed, format="csr")
    X.data[:] = 1.0
    test = [rng.choice(np.setdiff1d(np.arange(60), X[u].indices), 2, replace=False) for u in range(40)]
    bow = sp.random(60, 30, density=0.2, random_state=seed, format="csr")
    bow.data = np.ceil(bow.data * 3)
    return X, test, bow, [f"word{w}" for w in range(30)]


# ---------------------------------------------------------------------------------------------- runs
def cornac_available() -> str | None:
    """cornac's version, or None when it is not installed."""
    try:
        import cornac
    except ImportError:
        return None
    return cornac.__version__


def warm_up(cfg: ParityConfig, unit: Callable[[str, str, ParityConfig], dict[str, float]], model: str,
            impls: list[str]) -> None:
    """One throw-away fit per implementation at toy size (numba compilation, first torch / cornac calls)."""
    toy = dataclasses.replace(cfg, **TINY)
    for impl in impls:
        unit(model, impl, toy)


def peer_rows(model: str, dataset: str, metric: str, runs: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """The summary row of one model: each side's mean quality and CPU time, the per-repeat speed ratios' spread."""
    ours, theirs = runs["ours"], runs.get("cornac", [])
    row: dict[str, Any] = {"model": model, "dataset": dataset, "metric": metric, "repeats": len(ours),
                           "ours": float(np.mean([r[metric] for r in ours])),
                           "ours_sd": float(np.std([r[metric] for r in ours], ddof=1)) if len(ours) > 1 else 0.0,
                           "ours_cpu_s": float(np.mean([r["fit_cpu_s"] for r in ours]))}
    if theirs:
        ratios = np.array([c["fit_cpu_s"] / max(o["fit_cpu_s"], 1e-9) for o, c in zip(ours, theirs)])
        row.update(cornac=float(np.mean([r[metric] for r in theirs])),
                   cornac_sd=float(np.std([r[metric] for r in theirs], ddof=1)) if len(theirs) > 1 else 0.0,
                   cornac_cpu_s=float(np.mean([r["fit_cpu_s"] for r in theirs])),
                   speed_ratio=float(ratios.mean()), speed_ratio_sd=float(ratios.std(ddof=1)) if len(ratios) > 1 else 0.0,
                   speed_ratio_min=float(ratios.min()), speed_ratio_max=float(ratios.max()),
                   speed_ratios=[round(float(x), 4) for x in ratios])
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(RATING_MODELS + RANKING_MODELS),
                        choices=list(RATING_MODELS + RANKING_MODELS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tiny", action="store_true", help="toy sizes on synthetic data (seconds; the smoke test)")
    parser.add_argument("--results-dir", default="")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = ParityConfig(**TINY) if args.tiny else ParityConfig()
    cfg = dataclasses.replace(cfg, models=tuple(args.models))
    rec = BenchRecorder("bench_peers", config={**dataclasses.asdict(cfg), "repeats": args.repeats},
                        dataset="synthetic-tiny" if args.tiny else f"{cfg.rating_dataset}+{cfg.ranking_dataset}",
                        threads=args.threads, seed=cfg.seed, results_dir=args.results_dir or None)
    version = cornac_available()
    impls = ["ours", "cornac"] if version else ["ours"]
    if not version:
        rec.note("cornac is not installed (pip install -e '.[cornac]'): only our implementations ran")

    units: dict[str, Callable[[str, str, ParityConfig], dict[str, float]]] = {}
    if any(m in RATING_MODELS for m in args.models):
        if args.tiny:
            u, i, r, docs = tiny_rating_data()
        else:
            from xrec_core.parity import rating_data

            u, i, r, docs, files = rating_data(cfg)
            rec.add_data_files(files)
        from xrec_core.data.splits import kfold

        train, test = kfold(len(r), cfg.folds, cfg.seed)[0]
        units.update({m: (lambda m_, impl, c: rating_unit(m_, impl, c, u, i, r, docs, train, test))
                      for m in RATING_MODELS})
    if any(m in RANKING_MODELS for m in args.models):
        if args.tiny:
            X, held_out, bow, vocabulary = tiny_ranking_data()
        else:
            from xrec_core.parity import ranking_data

            X, held_out, bow, vocabulary, files = ranking_data(cfg)
            rec.add_data_files(files)
        units.update({m: (lambda m_, impl, c: ranking_unit(m_, impl, c, X, held_out, bow, vocabulary))
                      for m in RANKING_MODELS})

    summary = []
    for model in args.models:
        unit = units[model]
        metric, dataset = ("MSE", cfg.rating_dataset) if model in RATING_MODELS else ("Recall@50", cfg.ranking_dataset)
        if args.tiny:
            dataset = "synthetic-tiny"
        warm_up(cfg, unit, model, impls)
        runs: dict[str, list[dict[str, float]]] = {impl: [] for impl in impls}
        for repeat in range(args.repeats):
            seeded = dataclasses.replace(cfg, seed=cfg.seed + repeat)
            for impl in (impls if repeat % 2 == 0 else impls[::-1]):
                out = unit(model, impl, seeded)
                runs[impl].append(out)
                rec.timed(f"{model} {impl} #{repeat}", out["fit_s"], out["fit_cpu_s"], model=model, impl=impl,
                          repeat=repeat, seed=seeded.seed, dataset=dataset, **{metric: out[metric]})
                log.info("%s %s #%d: %.3f s CPU, %s %.5f", model, impl, repeat, out["fit_cpu_s"], metric, out[metric])
        summary.append(peer_rows(model, dataset, metric, runs))
        if version:
            summary[-1]["cornac_version"] = version
    rec.add_table("peers", summary)
    from xrec_core.records import MetricRow

    for row in summary:
        if "speed_ratio" in row:
            rec.add_metric(MetricRow.from_values("speed", row["dataset"], f"{row['model']} (ours vs cornac)",
                                                 "speed ratio (cornac CPU s / ours CPU s)", row["speed_ratios"],
                                                 higher_is_better=True))
    print(rec.finish())


if __name__ == "__main__":
    main()
