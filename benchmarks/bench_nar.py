"""Training speed of the NAR / CAR / CNR chapter's rankers: BPR training examples per second, CPU (and GPU when present).

Trains every neural ranker of the chapter for a few epochs at the chosen scale's sizes (the
paper's embeddings of 350 at ``full``) on the chosen dataset and writes a run record
``results/bench_nar/...`` with one metric row per (device, model) and a bar chart. Not run by
the tests::

    XREC_DATA=../shared/data python benchmarks/bench_nar.py --scale full --epochs 3 --threads 1
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from xrec_core.device import set_threads
from xrec_core.experiments import nar
from xrec_core.models.nar.models import ExplainableRanker, RankerConfig
from xrec_core.models.ncf import NCF
from xrec_core.plots import save_figure
from xrec_core.records import MetricRow

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import BenchRecorder, Clock  # noqa: E402

MODELS = ("NCF", "VBPR", "NAR", "CAR", "CNR")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="amazon2014-instruments")
    parser.add_argument("--scale", default="full")
    parser.add_argument("--epochs", type=int, default=3, help="base training epochs measured per model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--results-dir", default="")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    set_threads(args.threads)
    cfg = nar.NARConfig.from_scale(args.scale, dataset=args.dataset, n_threads=args.threads, epochs=args.epochs,
                                   adv_epochs=1, cf_outer=1, results_dir=args.results_dir)
    data = nar.prepare(cfg, cfg.seed)
    rec = BenchRecorder("bench_nar", config=cfg, dataset=cfg.dataset, threads=args.threads, seed=cfg.seed,
                        results_dir=args.results_dir or None, name=f"bench_nar__{args.scale}__{cfg.dataset}")
    rec.add_data_files(data.files)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for dev in devices:
        for name in MODELS:
            with Clock() as clock:
                if name == "NCF":
                    NCF(k=cfg.dim, layers=(2 * cfg.dim, cfg.dim), lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size,
                        loss="bpr", device=dev, seed=cfg.seed).fit(data.train)
                    examples = data.train.nnz * cfg.epochs
                else:
                    rc = RankerConfig(dim=cfg.dim, lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size, adv_epochs=1,
                                      cf_outer=1, cf_inner=cfg.cf_inner, seed=cfg.seed)
                    model = ExplainableRanker(name, data.f_u, data.f_i, rc, device=dev).fit(data.train)
                    examples = data.train.nnz * len(model.losses)  # base epochs plus augmentation epochs
            wall = clock.wall_s
            rate = examples / wall
            rec.add_metric(MetricRow.from_values("speed", cfg.dataset, f"{name} ({dev})", "train examples/s", [rate],
                                                 higher_is_better=True))
            rows.append({"device": dev, "model": name, "examples_per_s": rate, "wall_s": wall, "examples": examples,
                         "dim": cfg.dim, "threads": torch.get_num_threads(), **clock.fields()})
            rec.timed(f"{name} ({dev})", clock.wall_s, clock.cpu_s, examples_per_s=rate)
            logging.info("%s on %s: %.0f examples/s", name, dev, rate)
    rec.add_table("speed", rows)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    labels = [f"{r['model']} ({r['device']})" for r in rows]
    ax.barh(labels, [r["examples_per_s"] for r in rows])
    ax.set_xlabel("BPR training examples / s")
    fig.tight_layout()
    path = save_figure(fig, rec.results_dir / f"{rec.name}.png")
    rec.add_artifact("speed figure", path)
    print(rec.finish())


if __name__ == "__main__":
    main()
