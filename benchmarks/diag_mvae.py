"""Why MVAE writes one sentence: probes of PETER, MVAE and MVAE-NoRN while they train on one split.

Runs :func:`xrec_core.experiments.mvae.diagnostics.collapse_diagnostic` on the chapter's data at a
preset of :class:`~xrec_core.experiments.mvae.MVAEConfig` (every training setting comes from it; ``-p``
overrides a field, e.g. for a tiny check) and writes a run record
``BenchRecorder("diag_mvae", ...)`` into ``results/diag_mvae/`` (config, seed, data checksums, code
version, hardware, wall and CPU time per model) with the probes, the fits and a figure. The MVAE
chapter renders it with :func:`xrec_core.experiments.mvae.report.committed_mvae_diagnostic`. Its progress (one line per
epoch and model) goes to the log.

Usage::

    XREC_DATA=... python benchmarks/diag_mvae.py [--dataset amazon2014-instruments] [--scale full] [--split 0]
        [--models PETER,MVAE,MVAE-NoRN] [--threads 1] [-p max_epochs=2 ...]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import BenchRecorder  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    from xrec_core.cli import parse_param
    from xrec_core.experiments.mvae import MVAEConfig, load_explanations
    from xrec_core.experiments.mvae.diagnostics import PROBED_MODELS, collapse_diagnostic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=None, help="default: the config's dataset")
    parser.add_argument("--scale", default="full", help="the chapter preset the fits use")
    parser.add_argument("--split", type=int, default=0, help="which split of the preset (0 = the first)")
    parser.add_argument("--models", default=",".join(PROBED_MODELS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("-p", "--param", action="append", default=[], metavar="FIELD=VALUE", help="config override")
    parser.add_argument("--results-dir", default="", help="where the record goes (default: the project's results/)")
    parser.add_argument("--name", default="", help="the record's name (default: diag_mvae__bench__<dataset>__seed<seed>)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("xrec_core.training").setLevel(logging.WARNING)  # the probes log every epoch already

    overrides = dict(parse_param(p) for p in args.param)
    cfg = MVAEConfig.from_scale(args.scale, dataset=args.dataset, n_threads=args.threads, **overrides)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    rec = BenchRecorder("diag_mvae", config={**cfg.as_dict(), "split": args.split, "probed_models": ",".join(models)},
                        dataset=cfg.dataset, threads=args.threads, seed=cfg.seed, results_dir=args.results_dir or None,
                        name=args.name or None)
    exp, files = load_explanations(cfg)
    rec.add_data_files(files)
    result = collapse_diagnostic(exp, cfg, args.split, models)
    fits = []
    for fit in result["fits"]:
        curve = fit.pop("curve", None)
        if curve is not None:
            rec.add_learning_curve(fit["model"], f"split {args.split}", curve)
            rec.timed(fit["model"], fit["wall_s"], fit["cpu_s"], epochs=fit["epochs"])
        fits.append(fit)
    rec.add_table("split", [result["split"]])
    rec.add_table("fits", fits)
    rec.add_table("probes", result["probes"])

    from xrec_core.plots import save_figure
    from xrec_core.experiments.mvae.report import mvae_diagnostic_figure

    path = save_figure(mvae_diagnostic_figure(result["probes"]), rec.results_dir / f"{rec.name}_probes.png")
    rec.add_artifact("probes", path)
    print(rec.finish())
    return 0


if __name__ == "__main__":
    sys.exit(main())
