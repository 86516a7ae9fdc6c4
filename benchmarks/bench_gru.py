"""Training throughput and peak memory of the GRU and Embed recommenders ("Ask the GRU", issue 3).

Each configuration trains in a fresh subprocess (so that its peak memory is its own) on synthetic
data shaped like the chapter's MTER stand-in (item titles of 10-30 tokens, ~7 likes per user), for
a fixed number of mini-batch updates, and reports examples/s (one positive and one sampled negative
per user, i.e. ``2 * batch_users`` examples per update), wall and CPU seconds per update (and the
contention fields of ``benchmarks/_record.py``) and the peak memory: the process's peak resident set on CPU (minus the resident set after imports), and
``torch.cuda.max_memory_allocated`` on a GPU. Results go into a run record
``RunRecorder("bench_gru", scale="bench", ...)``; not run by the tests.

Usage: ``python benchmarks/bench_gru.py [--device cpu|cuda] [--updates 20] [--threads 1] [--tiny]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import BenchRecorder, timing_fields  # noqa: E402

CONFIGS = [
    # (encoder, k, k_h1, batch_users): the paper's sizes and the CPU "full" scale's
    ("embed", 200, 400, 512),
    ("gru", 200, 400, 512),
    ("embed", 32, 32, 128),
    ("gru", 32, 32, 128),
]
TINY_CONFIGS = [("embed", 8, 8, 16), ("gru", 8, 8, 16)]


def updates_label(updates: int) -> str:
    return f"{updates} update{'s' if updates != 1 else ''}"


def _worker(encoder: str, k: int, k_h1: int, batch: int, updates: int, device: str, threads: int,
            tiny: bool = False) -> dict:
    import resource
    import time

    import torch

    from xrec_core.device import set_seed, set_threads, thread_info
    from _gru import synthetic_text_data, text_recommender

    set_threads(threads)
    set_seed(0)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    data = synthetic_text_data(tiny)
    text_recommender(encoder, k=k, k_h1=k_h1, batch_users=batch, updates=2, device=device).fit(data)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    model = text_recommender(encoder, k=k, k_h1=k_h1, batch_users=batch, updates=updates, device=device)
    w0, c0 = time.perf_counter(), time.process_time()
    model.fit(data)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    out = {"encoder": encoder, "k": k, "k_h1": k_h1, "batch_users": batch, "updates": updates, "device": device,
           "threads": threads, "examples_per_s": 2 * batch * updates / wall, "wall_s_per_update": wall / updates,
           "cpu_s_per_update": cpu / updates, "examples_per_cpu_s": 2 * batch * updates / cpu, **timing_fields(wall, cpu),
           "thread_info": thread_info(),
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_after_imports_mb": rss0}
    if device.startswith("cuda"):
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--results-dir", default="")
    parser.add_argument("--tiny", action="store_true", help="toy data and sizes (the smoke test)")
    args = parser.parse_args(argv)
    if args.worker:
        enc, k, k_h1, batch = args.worker
        print(json.dumps(_worker(enc, int(k), int(k_h1), int(batch), args.updates, args.device, args.threads, args.tiny)))
        return

    import matplotlib.pyplot as plt

    from xrec_core.plots import save_figure
    from xrec_core.records import MetricRow

    rec = BenchRecorder("bench_gru", config=vars(args), dataset="synthetic-mter-shaped", threads=args.threads,
                        results_dir=args.results_dir or None)
    rows = []
    for enc, k, k_h1, batch in TINY_CONFIGS if args.tiny else CONFIGS:
        cmd = [sys.executable, __file__, "--worker", enc, str(k), str(k_h1), str(batch), "--updates", str(args.updates),
               "--device", args.device, "--threads", str(args.threads)] + (["--tiny"] if args.tiny else [])
        res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        rows.append(res)
        rec.timed(f"{enc} K={k} B={batch} ({updates_label(args.updates)})", res["wall_s"], res["cpu_s"],
                  examples_per_s=res["examples_per_s"], examples_per_cpu_s=res["examples_per_cpu_s"])
        name = f"{'GRU' if enc == 'gru' else 'Embed'} (K={k}, B={batch})"
        rec.add_metric(MetricRow.from_values("benchmark", "synthetic-mter-shaped", name, f"examples/s ({args.device})",
                                             [res["examples_per_s"]]))
        mem = res.get("peak_gpu_mb", res["peak_rss_mb"] - res["rss_after_imports_mb"])
        rec.add_metric(MetricRow.from_values("benchmark", "synthetic-mter-shaped", name, f"peak memory MB ({args.device})",
                                             [mem], higher_is_better=False))
        print(name, f"{res['examples_per_s']:.0f} examples/s, {mem:.0f} MB", flush=True)
    rec.add_table("throughput", rows)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    labels = [f"{r['encoder']}\nK={r['k']} B={r['batch_users']}" for r in rows]
    axes[0].bar(labels, [r["examples_per_s"] for r in rows], color="#2a9d8f")
    axes[0].set_ylabel("training examples / s")
    axes[1].bar(labels, [r.get("peak_gpu_mb", r["peak_rss_mb"] - r["rss_after_imports_mb"]) for r in rows], color="#e76f51")
    axes[1].set_ylabel("peak memory (MB)")
    fig.suptitle(f"GRU vs Embed training on {args.device} ({args.threads} thread(s))")
    fig.tight_layout()
    path = save_figure(fig, rec.results_dir / f"bench_gru_{args.device}.png")
    rec.add_artifact("throughput_figure", path)
    print(rec.finish())


if __name__ == "__main__":
    main()
