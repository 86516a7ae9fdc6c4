"""Benchmark of the MT chapter: ALS sweep time (Eqs. 11-12) and generator tokens/s, CPU (and GPU when present).

Writes a run record ``results/bench_mt/bench_mt__bench__synthetic__seed0.json`` with the timings
as curves and tables, and PNG figures beside it. Not run by the tests:

    python benchmarks/bench_mt.py [--threads 1] [--repeats 3] [--quick | --tiny]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import BenchRecorder, Clock  # noqa: E402


def time_als(n_users: int, n_items: int, n_ratings: int, k: int, repeats: int, seed: int = 0) -> tuple[float, float]:
    """Median wall and CPU seconds of one full ALS sweep (all users, then all items) on random ratings."""
    from xrec_core.models.mt import ContextAwareMF

    rng = np.random.default_rng(seed)
    pairs = rng.choice(n_users * n_items, n_ratings, replace=False)
    users, items = pairs // n_items, pairs % n_items
    ratings = rng.integers(1, 6, n_ratings).astype(float)
    mf = ContextAwareMF(n_factors=k, seed=seed).init(users, items, ratings, n_users, n_items)
    Ut, Vt = rng.normal(size=(n_users, k)), rng.normal(size=(n_items, k))
    walls, cpus = [], []
    for _ in range(repeats):
        with Clock() as c:
            mf.sweep(Ut, Vt)
        walls.append(c.wall_s)
        cpus.append(c.cpu_s)
    return float(np.median(walls)), float(np.median(cpus))


def time_generator(device: str, vocab: int, hidden: int, batch: int, length: int, repeats: int) -> dict[str, float]:
    """Tokens/s of the MT-P decoder: teacher-forced training step and free-running sampling."""
    import torch

    from xrec_core.models.mt import ReviewDecoder, sequence_log_probs

    torch.manual_seed(0)
    dec = ReviewDecoder(vocab, 64, hidden, 64, banned_ids=(0, 2)).to(device)
    opt = torch.optim.Adam(dec.parameters(), lr=1e-3)
    cond = torch.randn(batch, 64, device=device)
    targets = torch.randint(4, vocab, (batch, length), device=device)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    train, sample, cpu = [], [], []
    for _ in range(repeats + 1):
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        logp, mask = sequence_log_probs(dec, cond, targets, 2, 0, 3)
        loss = -logp.sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync()
        train.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        out = dec.sample(cond, length, 2, 3, 0)
        sync()
        sample.append((time.perf_counter() - t0, int((out != 0).sum())))
        cpu.append(time.process_time() - c0)
    tr = float(np.median(train[1:]))
    sa = float(np.median([n / s for s, n in sample[1:]]))
    wall = float(sum(t for t in train[1:]) + sum(s for s, _ in sample[1:]))
    return {"teacher forcing tokens/s": batch * length / tr, "sampling tokens/s": sa, "wall_s": wall,
            "cpu_s": float(sum(cpu[1:]))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smaller grid (shared or slow machines)")
    parser.add_argument("--tiny", action="store_true", help="toy sizes (the smoke test)")
    parser.add_argument("--results-dir", default="")
    args = parser.parse_args(argv)
    n_ratings_grid = (2000,) if args.tiny else (10_000, 50_000) if args.quick else (10_000, 50_000, 200_000)
    k_grid = (8,) if args.tiny else (16, 32) if args.quick else (16, 32, 64)
    vocab_grid = (300,) if args.tiny else (3000,) if args.quick else (3000, 20000)
    hidden_grid = (16,) if args.tiny else (64,) if args.quick else (64, 256)

    import matplotlib.pyplot as plt
    import torch

    from xrec_core.plots import save_figure

    config = {"threads": args.threads, "repeats": args.repeats, "ratings": n_ratings_grid, "K": k_grid,
              "vocab": vocab_grid, "hidden": hidden_grid}
    rec = BenchRecorder("bench_mt", config=config, dataset="synthetic", threads=args.threads,
                        results_dir=args.results_dir or None)
    als_rows = []
    for n_ratings in n_ratings_grid:
        for k in k_grid:
            n_users, n_items = n_ratings // 8, n_ratings // 12
            s, cpu = time_als(n_users, n_items, n_ratings, k, args.repeats)
            als_rows.append({"ratings": n_ratings, "users": n_users, "items": n_items, "K": k, "sweep_s": s, "sweep_cpu_s": cpu})
            rec.timed(f"ALS sweep ({n_ratings} ratings, K={k}, median)", s, cpu)
    rec.add_table("ALS sweep", als_rows)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    gen_rows = []
    for dev in devices:
        for vocab in vocab_grid:
            for hidden in hidden_grid:
                r = time_generator(dev, vocab, hidden, batch=8 if args.tiny else 64, length=5 if args.tiny else 30,
                                   repeats=args.repeats)
                gen_rows.append({"device": dev, "vocab": vocab, "hidden": hidden, **r})
                rec.timed(f"generator {dev} V={vocab} H={hidden} ({args.repeats} repeats)", r["wall_s"], r["cpu_s"])
    rec.add_table("generator throughput", gen_rows)
    for k in k_grid:
        sel = [r for r in als_rows if r["K"] == k]
        rec.add_curve(f"ALS sweep/K={k}", {"x": [r["ratings"] for r in sel], "y": [r["sweep_s"] for r in sel],
                                            "xlabel": "training ratings", "ylabel": "seconds per sweep"})
    out = rec.results_dir / "figures"
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for name, c in rec.curves.items():
        axes[0].plot(c["x"], c["y"], marker="o", label=name.split("/")[1])
    axes[0].set(xscale="log", yscale="log", xlabel="training ratings", ylabel="seconds per ALS sweep", title="ALS (Eqs. 11-12)")
    axes[0].legend()
    labels = [f"{r['device']} V={r['vocab']} H={r['hidden']}" for r in gen_rows]
    x = np.arange(len(gen_rows))
    axes[1].bar(x - 0.2, [r["teacher forcing tokens/s"] for r in gen_rows], 0.4, label="teacher forcing (fwd+bwd)")
    axes[1].bar(x + 0.2, [r["sampling tokens/s"] for r in gen_rows], 0.4, label="sampling")
    axes[1].set_xticks(x, labels, rotation=45, ha="right", fontsize=7)
    axes[1].set(yscale="log", ylabel="tokens / s", title="MT-P decoder")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    path = save_figure(fig, out / "bench_mt.png")
    rec.add_artifact("benchmark figure", path)
    print(rec.finish())


if __name__ == "__main__":
    main()
