"""Benchmark of the MVAE chapter's generators: training tokens/s and peak memory.

Each model trains for a fixed number of steps on synthetic batches shaped like the
explanation data (``--vocab`` words, sentences of ``--length`` tokens), in a fresh process so
that the peak resident memory (CPU) or peak CUDA memory (GPU) belongs to that model alone. One
warm-up step runs under ``torch.utils.flop_counter.FlopCounterMode``: the floating-point operations
of a training step's matrix products, convolutions and attention (forward and backward; element-wise
work is not counted), so that tokens/s can be read against the work each model does per token
(``gflop_per_s``: counted FLOPs per second of wall time).
The results are written as a run record ``RunRecorder("bench_mvae", scale="bench", ...)`` with a
figure. Not run by the tests.

Usage::

    python benchmarks/bench_mvae.py --scale full --steps 20 --threads 1
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import BenchRecorder, timing_fields  # noqa: E402


def _bench_one(name: str, scale: str, steps: int, batch: int, length: int, vocab: int, threads: int, device: str, queue) -> None:
    import torch

    from xrec_core.device import pick_device, set_seed, set_threads, thread_info
    from xrec_core.experiments.mvae import MVAEConfig
    from xrec_core.experiments.mvae.protocol import build_generator
    from xrec_core.models.explain import ExplanationBatch, TextSpec

    set_threads(threads)
    set_seed(0)
    dev = pick_device(device)
    cfg = MVAEConfig.from_scale(scale)
    spec = TextSpec(vocab, 0, 2, 3)
    n_users, n_items = 2000, 1000
    model = build_generator(name, n_users, n_items, spec, cfg, split=0).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, foreach=True)  # as ExplanationGenerator.fit trains

    def make_batch() -> ExplanationBatch:
        words = torch.randint(4, vocab, (batch, length))
        seq = torch.cat([torch.full((batch, 1), 2), words, torch.full((batch, 1), 3)], 1)
        return ExplanationBatch(torch.randint(0, n_users, (batch,)), torch.randint(0, n_items, (batch,)),
                                torch.rand(batch) * 4 + 1, torch.randint(0, 2, (batch,)), words[:, 0], seq).to(dev)

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model.train()
    flops = 0
    for step in range(steps + 2):
        if step == 2:  # two warm-up steps excluded from timing
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.process_time()
        b = make_batch()
        model.on_step(step)
        opt.zero_grad()
        if step == 0:  # a warm-up step, counted (the counter slows it)
            from torch.utils.flop_counter import FlopCounterMode

            with FlopCounterMode(display=False) as counter:
                model.loss(b)["loss"].backward()
            flops = counter.get_total_flops()
        else:
            model.loss(b)["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_mb = (torch.cuda.max_memory_allocated() / 2 ** 20 if dev.type == "cuda"
               else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    queue.put({"model": name, "tokens_per_s": steps * batch * (length + 1) / wall, "step_s": wall / steps,
               "mflop_per_token": flops / (batch * (length + 1)) / 1e6, "gflop_per_s": flops * steps / wall / 1e9,
               "peak_mb": peak_mb, "parameters": sum(p.numel() for p in model.parameters()), "device": str(dev),
               **timing_fields(wall, cpu), "thread_info": thread_info()})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="full")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=15)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models", default="NRT,Att2Seq,NETE,PETER,MVAE,MVAE-NoMLF,MVAE-NoRN")
    parser.add_argument("--results-dir", default=None)
    args = parser.parse_args(argv)

    import pandas as pd

    from xrec_core.experiments.mvae import MVAEConfig
    from xrec_core.plots import save_figure
    from xrec_core.records import MetricRow

    cfg = MVAEConfig.from_scale(args.scale)
    rec = BenchRecorder("bench_mvae", config={**cfg.as_dict(), **vars(args)}, dataset="synthetic",
                        threads=args.threads, results_dir=args.results_dir)
    ctx = mp.get_context("spawn")
    rows = []
    for name in args.models.split(","):
        q = ctx.Queue()
        p = ctx.Process(target=_bench_one, args=(name, args.scale, args.steps, args.batch, args.length, args.vocab,
                                                 args.threads, args.device, q))
        p.start()
        rows.append(q.get())
        p.join()
        rec.timed(f"{name} ({args.steps} steps)", rows[-1]["wall_s"], rows[-1]["cpu_s"],
                  tokens_per_s=rows[-1]["tokens_per_s"])
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    for r in rows:
        rec.add_metric(MetricRow.from_values("Training speed", "synthetic", r["model"], "tokens/s", [r["tokens_per_s"]]))
        rec.add_metric(MetricRow.from_values("Training speed", "synthetic", r["model"], "peak memory (MB)", [r["peak_mb"]]))
    rec.add_table("benchmark", rows)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    df.plot.barh(x="model", y="tokens_per_s", ax=axes[0], legend=False, title=f"training tokens/s ({rows[0]['device']})")
    df.plot.barh(x="model", y="peak_mb", ax=axes[1], legend=False, title="peak memory (MB)")
    fig.tight_layout()
    path = save_figure(fig, rec.results_dir / f"{rec.name}_speed.png")
    rec.add_artifact("speed", path)
    print(rec.finish())


if __name__ == "__main__":
    main()
