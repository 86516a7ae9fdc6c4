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
from xrec_core.models.nar.models import RANKERS
from xrec_core.plots import save_figure
from xrec_core.records import MetricRow

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import BenchRecorder, Clock  # noqa: E402

MODELS = ("NCF", "VBPR", "NAR", "CAR", "CNR")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="amazon2014-instruments")
    parser.add_argument("--scale", default="full")
    parser.add_argument("--epochs", type=int, default=3, help="epoch cap of each training phase (patience = cap)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--results-dir", default="")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    set_threads(args.threads)
    cfg = nar.NARConfig.from_scale(args.scale, dataset=args.dataset, n_threads=args.threads, max_epochs=args.epochs,
                                   patience=args.epochs, cf_outer=1, results_dir=args.results_dir)
    data = nar.prepare(cfg, cfg.seed)
    rec = BenchRecorder("bench_nar", config=cfg, dataset=cfg.dataset, threads=args.threads, seed=cfg.seed,
                        results_dir=args.results_dir or None, name=f"bench_nar__{args.scale}__{cfg.dataset}")
    rec.add_data_files(data.files)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for dev in devices:
        for name in MODELS:
            with Clock() as clock:
                train, valid = nar.validation_split(data, cfg, cfg.seed)
                model = RANKERS[name](**nar.ranker_params(cfg, cfg.seed, dev)).fit(train, valid)
                # every phase's epochs (base plus augmentation), validation included in the time
                examples = train.interactions.nnz * sum(c.epochs for c in model.curves.values())
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
