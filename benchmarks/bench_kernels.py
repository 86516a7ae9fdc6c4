"""Speed of the kernels of issue 15: BPR (ours vs cornac), ALS sweeps, the GRU text encoder.

* **BPR** on CiteULike-t (the parity split of ``xrec_core.parity``; k=50, 200 epochs, lr 0.01, reg 0.01),
  ours beside cornac's BPR when cornac is installed (``pip install -e ".[cornac]"``), with each
  one's Recall@50 on the held-out likes so that speed is compared at equal quality. Without the
  data (or with ``--synthetic``) a random matrix of the same shape is used and recall is skipped.
* **ALS**: one ``ContextAwareMF`` sweep and one ``BiasedMF`` iteration on random ratings at the
  issue's sizes (50k ratings with K=32, 200k ratings with K=64).
* **GRU encoder**: training examples/s of the GRU recommender (k=200, 512 users per update) on
  the synthetic MTER-shaped data of ``bench_gru.py``.

Every timing carries wall and CPU seconds and the record says whether the machine was contended
(``benchmarks/_record.py``). Writes ``results/bench_kernels/...json``; ``--tiny`` runs everything
at toy sizes in seconds (the smoke test does). Usage::

    XREC_DATA=../shared/data python benchmarks/bench_kernels.py --threads 1
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import BenchRecorder, Clock  # noqa: E402

log = logging.getLogger("bench_kernels")


# ---------------------------------------------------------------------------------------------- BPR
def _bpr_data(synthetic: bool, tiny: bool) -> tuple[sp.csr_matrix, list[np.ndarray] | None, str]:
    """Training likes, held-out likes per user (or None) and the dataset name."""
    if tiny:
        rng = np.random.default_rng(0)
        X = sp.random(200, 300, density=0.03, random_state=0, format="csr")
        X.data[:] = 1.0
        test = [rng.choice(300, 2, replace=False) for _ in range(200)]
        return X, test, "synthetic-tiny"
    if not synthetic:
        try:
            from xrec_core.parity import ParityConfig, ranking_data

            X, test, *_ = ranking_data(ParityConfig())
            return X, test, "citeulike-t"
        except Exception as exc:  # data folder not set or dataset missing
            log.warning("CiteULike-t not available (%s); using a synthetic matrix of its shape", exc)
    X = sp.random(5219, 25975, density=100602 / (5219 * 25975), random_state=0, format="csr")
    X.data[:] = 1.0
    return X, None, "synthetic-citeulike-t-shaped"


def _recall50(score_fn, X: sp.csr_matrix, test: list[np.ndarray] | None) -> float | None:
    if test is None:
        return None
    from xrec_core.metrics.ranking import mean_over_users, recall_at_k, topk_items

    users = np.array([u for u, t in enumerate(test) if len(t)])
    top = topk_items(score_fn(users), 50, exclude=X[users])
    return float(mean_over_users(recall_at_k(top, [test[u] for u in users], 50)))


def bench_bpr(rec: BenchRecorder, epochs: int, synthetic: bool, tiny: bool) -> list[dict]:
    from xrec_core.data.feedback import Interactions
    from xrec_core.models.ranking_baselines import BPR

    X, test, name = _bpr_data(synthetic, tiny)
    k, lr, reg = (8, 0.05, 0.01) if tiny else (50, 0.01, 0.01)  # reg: cornac's default lambda_reg, given to both
    BPR(k=k, epochs=1, seed=0).fit(Interactions(X[: min(50, X.shape[0])]))  # compile the kernels outside the timing
    rows = []
    with Clock() as c:
        ours = BPR(k=k, lr=lr, reg=reg, epochs=epochs, seed=123).fit(Interactions(X))
    rows.append(rec.timed(f"BPR ours ({name})", c.wall_s, c.cpu_s, model="BPR", impl="ours", dataset=name, k=k,
                          epochs=epochs, interactions=int(X.nnz), recall50=_recall50(ours.score, X, test)))
    try:
        import cornac
        from cornac.data import Dataset
    except ImportError:
        rec.note("cornac is not installed: BPR ran without cornac's side-by-side timing")
        return rows
    r, cidx = X.nonzero()
    ds = Dataset.from_uir(list(zip(r.astype(str), cidx.astype(str), np.ones(len(r)))), seed=123)
    with Clock() as c:
        # with a seed cornac's BPR runs its Cython loop on one thread whatever num_threads says
        theirs = cornac.models.BPR(k=k, max_iter=epochs, learning_rate=lr, lambda_reg=reg, seed=123, verbose=False).fit(ds)
    users_map = np.array([ds.uid_map.get(str(u), -1) for u in range(X.shape[0])])
    items_map = np.array([ds.iid_map.get(str(j), -1) for j in range(X.shape[1])])

    def cornac_scores(users: np.ndarray) -> np.ndarray:
        out = np.full((len(users), X.shape[1]), -np.inf)
        known = items_map >= 0
        uu = users_map[users]
        s = theirs.u_factors[np.maximum(uu, 0)] @ theirs.i_factors[items_map[known]].T + theirs.i_biases[items_map[known]]
        out[:, known] = np.where(uu[:, None] >= 0, s, -np.inf)
        return out

    rows.append(rec.timed(f"BPR cornac ({name})", c.wall_s, c.cpu_s, model="BPR", impl="cornac", dataset=name, k=k,
                          epochs=epochs, interactions=int(X.nnz), recall50=_recall50(cornac_scores, X, test),
                          cornac=cornac.__version__))
    return rows


# ---------------------------------------------------------------------------------------------- ALS
def _random_ratings(n: int, n_users: int, n_items: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    pairs = rng.choice(n_users * n_items, n, replace=False)
    return pairs // n_items, pairs % n_items, rng.integers(1, 6, n).astype(float)


def bench_als(rec: BenchRecorder, sizes: list[tuple[int, int]]) -> list[dict]:
    from xrec_core.models.mt import ContextAwareMF
    from xrec_core.data.feedback import Ratings
    from xrec_core.models.rating_baselines import BiasedMF

    rows = []
    for n, k in sizes:
        n_users, n_items = n // 8, n // 12
        users, items, ratings = _random_ratings(n, n_users, n_items)
        mf = ContextAwareMF(n_factors=k).init(users, items, ratings, n_users, n_items)
        mf.sweep()  # warm-up
        with Clock() as c:
            mf.sweep()
        rows.append(rec.timed(f"ContextAwareMF sweep ({n} ratings, K={k})", c.wall_s, c.cpu_s, model="ContextAwareMF",
                              ratings=n, K=k, users=n_users, items=n_items))
        with Clock() as c:
            BiasedMF(k=k, n_iter=1).fit(Ratings(users, items, ratings, n_users, n_items))
        rows.append(rec.timed(f"BiasedMF iteration ({n} ratings, K={k})", c.wall_s, c.cpu_s, model="BiasedMF",
                              ratings=n, K=k, users=n_users, items=n_items))
    return rows


# ---------------------------------------------------------------------------------------------- GRU
def bench_gru(rec: BenchRecorder, k: int, k_h1: int, batch: int, updates: int, tiny: bool) -> list[dict]:
    from _gru import synthetic_text_data, text_recommender

    from xrec_core.device import set_seed

    set_seed(0)
    data = synthetic_text_data(tiny)
    text_recommender("gru", k=k, k_h1=k_h1, batch_users=batch, updates=1).fit(data)  # warm-up
    model = text_recommender("gru", k=k, k_h1=k_h1, batch_users=batch, updates=updates)
    with Clock() as c:
        model.fit(data)
    examples = 2 * batch * updates
    return [rec.timed(f"GRU recommender update (K={k}, B={batch})", c.wall_s, c.cpu_s, model="GRU", k=k, k_h1=k_h1,
                      batch_users=batch, updates=updates, examples_per_s=examples / c.wall_s,
                      examples_per_cpu_s=examples / c.cpu_s)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bpr-epochs", type=int, default=200)
    parser.add_argument("--gru-updates", type=int, default=3)
    parser.add_argument("--synthetic", action="store_true", help="BPR on a random matrix of CiteULike-t's shape")
    parser.add_argument("--tiny", action="store_true", help="toy sizes (seconds; the smoke test)")
    parser.add_argument("--only", nargs="+", choices=("bpr", "als", "gru"), default=["bpr", "als", "gru"])
    parser.add_argument("--results-dir", default="")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    rec = BenchRecorder("bench_kernels", config=vars(args), dataset="tiny" if args.tiny else "issue15-sizes",
                        threads=args.threads, results_dir=args.results_dir or None)
    from xrec_core.records import MetricRow

    tables: dict[str, list[dict]] = {}
    if "bpr" in args.only:
        tables["BPR"] = bench_bpr(rec, 2 if args.tiny else args.bpr_epochs, args.synthetic, args.tiny)
    if "als" in args.only:
        tables["ALS"] = bench_als(rec, [(2000, 8)] if args.tiny else [(50_000, 32), (200_000, 64)])
    if "gru" in args.only:
        tables["GRU encoder"] = bench_gru(rec, *((16, 16, 32, 1) if args.tiny else (200, 400, 512, args.gru_updates)),
                                          tiny=args.tiny)
    for name, rows in tables.items():
        rec.add_table(name, rows)
        for r in rows:
            rec.add_metric(MetricRow.from_values("speed", rec.dataset, r["label"], "CPU seconds", [r["cpu_s"]],
                                                 higher_is_better=False))
            log.info("%s: %.3f s wall, %.3f s CPU%s", r["label"], r["wall_s"], r["cpu_s"],
                     " (contended)" if r["contended"] else "")
    print(rec.finish())


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    log.info("done in %.1f s", time.perf_counter() - t0)
