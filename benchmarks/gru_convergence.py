"""Updates and CPU time a GRU-chapter recommender needs to converge, at two batch sizes ("Ask the GRU", issue 14).

The chapter's ``full`` preset has to choose a batch of users per update: the paper's 512 costs
about 0.35-0.45 s of CPU per update for Embed (K = 200) on one core, and a fit needs well over a
thousand updates. A smaller batch is cheaper per update but noisier. This script trains each
configuration on warm fold 1 of a dataset with the chapter's own data, folds, validation split and
registry models, and logs after every epoch of ``updates_per_epoch`` updates the validation
Recall@50, the updates done and the process CPU seconds; training stops at early stopping (the
config's patience) or when a configuration has used ``--cpu-budget`` CPU seconds. MostPop's
validation Recall@50 on the same split is the floor. Results go into a run record
``RunRecorder("bench_gru_convergence", scale="bench", ...)``; not run by the tests.

Usage: ``XREC_DATA=... python benchmarks/gru_convergence.py [--dataset mter-cellphones] [--scale full] [--cpu-budget 900]
[--configs Embed:512 Embed:128 GRU:512 GRU:128 Embed:128:k=64,lr=0.003] [--threads 1]`` (a configuration is a
model, a batch of users and optional config fields of :class:`xrec_core.experiments.gru.config.GRUConfig`)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import BenchRecorder  # noqa: E402


class BudgetSpent(Exception):
    """Raised from the epoch hook when a configuration has used its CPU budget."""


def most_pop_valid_recall(fold, data) -> float:
    """MostPop's validation Recall@50 on ``fold``'s validation split (training likes' popularity)."""
    from xrec_core.experiments.gru.protocol import _topk_scores, valid_recall

    pop = np.asarray(fold.train.sum(0)).ravel().astype(np.float64)  # (n_items,)
    exclude = fold.valid.exclude[fold.valid.users] if fold.valid.exclude is not None else None
    if fold.valid.candidates is not None:
        raise ValueError("use a warm fold (cold folds rank candidates only)")
    top = _topk_scores(lambda users: np.tile(pop, (len(users), 1)), fold.valid.users, exclude, 50)
    return valid_recall(top, fold)


def parse_spec(spec: str) -> tuple[str, int, dict[str, Any]]:
    """``MODEL:BATCH[:field=value,...]`` -> (model, batch, config overrides), e.g. ``Embed:128:k=64,lr=0.003``."""
    from xrec_core.experiments.gru.config import GRUConfig

    name, batch, *rest = spec.split(":")
    types = {f.name: f.type for f in dataclasses.fields(GRUConfig)}
    overrides: dict[str, Any] = {}
    for item in filter(None, ",".join(rest).split(",")):
        key, value = item.split("=")
        if key not in types:
            raise SystemExit(f"{spec}: {key} is not a GRUConfig field")
        overrides[key] = {"int": int, "float": float}.get(str(types[key]), str)(value)
    return name, int(batch), overrides


def measure(spec: str, fold, data, cfg, budget_s: float) -> dict:
    """Train the model of ``spec`` (:func:`parse_spec`) until early stopping or ``budget_s`` CPU seconds."""
    from xrec_core.experiments.gru.protocol import fit_text_model, pretrained_embeddings

    name, batch_users, overrides = parse_spec(spec)
    # one epoch covers the same number of users at every batch size
    per_epoch = max(1, cfg.updates_per_epoch * cfg.batch_users // batch_users)
    run_cfg = dataclasses.replace(cfg, batch_users=batch_users, updates_per_epoch=per_epoch, **overrides)
    gru = name.startswith("GRU")
    pretrained = pretrained_embeddings(data, run_cfg, run_cfg.k_gru if gru else run_cfg.k)
    points: list[dict] = []
    cpu0, wall0 = time.process_time(), time.perf_counter()

    def on_epoch(epoch: int, value: float) -> None:
        cpu = time.process_time() - cpu0
        points.append({"epoch": epoch, "updates": epoch * per_epoch, "valid_recall50": float(value),
                       "cpu_s": cpu, "wall_s": time.perf_counter() - wall0})
        print(f"{spec} epoch {epoch} updates {epoch * per_epoch} recall {value:.4f} cpu {cpu:.0f}s",
              flush=True)
        if cpu > budget_s:
            raise BudgetSpent

    stopped = "early stopping"
    try:
        fit_text_model(name, fold, data, run_cfg, pretrained, on_epoch=on_epoch)
    except BudgetSpent:
        stopped = "CPU budget"
    best = max(points, key=lambda p: p["valid_recall50"]) if points else {}
    return {"config": spec, "model": name, "batch_users": batch_users, **overrides, "updates_per_epoch": per_epoch,
            "stopped_by": stopped,
            "best_valid_recall50": best.get("valid_recall50"), "best_updates": best.get("updates"),
            "cpu_s_to_best": best.get("cpu_s"), "cpu_s": time.process_time() - cpu0,
            "cpu_s_per_update": (points[-1]["cpu_s"] / points[-1]["updates"]) if points else None, "curve": points}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mter-cellphones")
    parser.add_argument("--scale", default="full", help="the chapter preset the runs start from")
    parser.add_argument("--cpu-budget", type=float, default=900.0, help="CPU seconds per configuration")
    parser.add_argument("--configs", nargs="+", default=["Embed:512", "Embed:128", "GRU:512", "GRU:128"],
                        metavar="MODEL:BATCH[:field=value,...]")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval-users", type=int, default=1000)
    parser.add_argument("--results-dir", default="", help="where the record goes (default: the project's results/)")
    parser.add_argument("--name", default="", help="the record's name (default: bench_gru_convergence__bench__<dataset>__seed0)")
    args = parser.parse_args(argv)

    from xrec_core.experiments.gru.config import make_config
    from xrec_core.experiments.gru.data import load_data, make_folds

    cfg = make_config(args.scale, dataset=args.dataset, folds_run=1, eval_users=args.eval_users, n_threads=args.threads)
    rec = BenchRecorder("bench_gru_convergence", config=vars(args), dataset=args.dataset, threads=args.threads,
                        results_dir=args.results_dir or None, name=args.name or None)
    data = load_data(cfg)
    fold = next(f for f in make_folds(data, cfg) if f.scenario == "warm")
    floor = most_pop_valid_recall(fold, data)
    print(f"MostPop validation Recall@50 {floor:.4f}", flush=True)
    rows = []
    for spec in args.configs:
        w0, c0 = time.perf_counter(), time.process_time()
        row = measure(spec, fold, data, cfg, args.cpu_budget)
        row["vs_most_pop"] = row["best_valid_recall50"] / floor if row["best_valid_recall50"] else None
        rec.timed(spec, time.perf_counter() - w0, time.process_time() - c0,
                  best_valid_recall50=row["best_valid_recall50"], best_updates=row["best_updates"],
                  stopped_by=row["stopped_by"])
        rows.append(row)
    rec.add_table("convergence", [{k: v for k, v in r.items() if k != "curve"} for r in rows])
    rec.add_table("curves", [{"config": r["config"], **p} for r in rows for p in r["curve"]])
    rec.add_table("preset", [{"most_pop_valid_recall50": floor, **{k: getattr(cfg, k) for k in (
        "k", "k_gru", "k_h1", "lr", "max_len", "updates_per_epoch", "patience", "eval_users", "batch_users")}}])

    import matplotlib.pyplot as plt

    from xrec_core.plots import save_figure

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for r in rows:
        ax.plot([p["cpu_s"] / 60 for p in r["curve"]], [p["valid_recall50"] for p in r["curve"]], marker=".",
                label=r["config"])
    ax.axhline(floor, color="grey", ls="--", label="MostPop")
    ax.set_xlabel("CPU minutes (1 thread)")
    ax.set_ylabel("validation Recall@50")
    ax.set_title(f"{args.dataset}, warm fold 1")
    ax.legend(fontsize=8)
    fig.tight_layout()
    rec.add_artifact("convergence_figure", save_figure(fig, rec.results_dir / f"{rec.name}.png"))
    print(rec.finish())
    return 0


if __name__ == "__main__":
    sys.exit(main())
