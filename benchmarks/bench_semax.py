"""Training speed of the SEMAX chapter's models: training examples per second, CPU (and GPU when present).

Runs one epoch of every review model at the ``full`` (or chosen) scale's sizes on the chosen dataset
and writes a run record ``results/bench_semax/...`` with one metric row per (device, model) and a
bar chart. Not run by the tests::

    XREC_DATA=../shared/data python benchmarks/bench_semax.py --scale full --threads 1
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from xrec_core.device import set_threads
from xrec_core.experiments import semax as X
from xrec_core.experiments.common import figures_dir
from xrec_core.experiments.semax.protocol import build_model
from xrec_core.models.semax import ReviewSet
from xrec_core.plots import save_figure
from xrec_core.records import MetricRow

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import BenchRecorder, Clock  # noqa: E402

MODELS = ("DeepCoNN", "TransNets", "TransNets-Ext", "SEMA", "SEMAX")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="amazon2014-instruments")
    parser.add_argument("--scale", default="full")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-examples", type=int, default=2048, help="training examples per measured epoch")
    parser.add_argument("--results-dir", default="")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    set_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    cfg = X.SemaxConfig.from_scale(args.scale, dataset=args.dataset, n_threads=args.threads, max_epochs=1,
                                   results_dir=args.results_dir)
    data = X.load_data(cfg)
    rec = BenchRecorder("bench_semax", config=cfg, dataset=cfg.dataset, threads=args.threads, seed=cfg.seed,
                        results_dir=args.results_dir or None, name=f"bench_semax__{args.scale}__{cfg.dataset}")
    rec.add_data_files(data.files)
    train = ReviewSet(data.corpus, data.fit_idx[: args.max_examples])
    valid = ReviewSet(data.corpus, data.valid_idx[: max(1, args.max_examples // 8)])
    rows = []
    for dev in devices:
        for name in MODELS:
            cfg.device = dev
            model = build_model(name, cfg, cfg.seed)
            with Clock() as clock:
                model.fit(train, valid)  # one epoch (max_epochs=1), its validation included
            wall = clock.wall_s
            rate = len(train.idx) / wall
            rec.add_metric(MetricRow.from_values("speed", cfg.dataset, f"{name} ({dev})", "train examples/s", [rate],
                                                 higher_is_better=True))
            rows.append({"device": dev, "model": name, "examples_per_s": rate, "wall_s": wall, "examples": len(train.idx),
                         "threads": torch.get_num_threads(), **clock.fields()})
            rec.timed(f"{name} ({dev})", clock.wall_s, clock.cpu_s, examples_per_s=rate)
            logging.info("%s on %s: %.1f examples/s", name, dev, rate)
    rec.add_table("speed", rows)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    labels = [f"{r['model']}\n{r['device']}" for r in rows]
    ax.bar(np.arange(len(rows)), [r["examples_per_s"] for r in rows])
    ax.set_xticks(np.arange(len(rows)), labels, fontsize=7)
    ax.set_ylabel("training examples / s")
    ax.set_title(f"SEMAX chapter models, {cfg.dataset}, {args.scale} sizes, {args.threads} thread(s)")
    path = save_figure(fig, figures_dir("semax", cfg) / "bench_speed.png")
    rec.add_artifact("speed", path)
    rec.add_curve("speed", {"x": labels, "y": [r["examples_per_s"] for r in rows]})
    print(rec.finish())


if __name__ == "__main__":
    main()
