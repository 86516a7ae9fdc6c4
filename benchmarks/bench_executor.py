"""Wall time of one chapter's protocol on Ray with 1 and with 2 workers, and the speed-up (issue 17).

Runs the NAR / CAR / CNR chapter's units (every model x seed) through
:func:`xrec_core.experiments.nar.run_protocol` with ``executor="ray"`` on a local Ray of 1, then 2
CPUs (one unit per CPU, one thread per unit), each time into an empty unit store, checks that both
runs computed the same numbers and writes a record ``results/bench_executor/...`` with one timed row
per worker count, the speed-up and the ideal one (the units' summed compute time over the workers).

The units run in Ray's worker processes, not in this one: each row's ``cpu_s`` is this process's CPU
time plus the units' own CPU seconds (``units_cpu_s``, measured in the workers), so that its
wall/CPU ratio flags a run that waited for a core, as in every benchmark record.
Take the numbers on a quiet machine with at least 2 free cores::

    XREC_DATA=../shared/data python benchmarks/bench_executor.py --scale smoke
    python benchmarks/bench_executor.py --tiny    # synthetic data, seconds (the tests run this)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from xrec_core.experiments import nar
from xrec_core.records import MetricRow, RunRecorder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import BenchRecorder, Clock  # noqa: E402

#: wall-clock fields of a unit's result (they differ between any two runs)
TIMING_FIELDS = ("fit_s", "examples_per_s", "seconds")


def without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMING_FIELDS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def run_on_ray(workers: int, cfg: nar.NARConfig, data: nar.NARData | None, scratch: Path) -> dict[str, Any]:
    """One protocol run on a fresh local Ray of ``workers`` CPUs: its wall time, the units' seconds, the results."""
    import ray

    from xrec_core.experiments.nar import report

    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        recorder = RunRecorder("nar", config=cfg, scale=cfg.scale, dataset=cfg.dataset, seed=cfg.seed,
                               results_dir=scratch, name=f"workers{workers}")
        draw, report._figures = report._figures, lambda *args, **kwargs: {}  # figures are not timed
        try:
            with Clock() as clock:
                out = nar.run_protocol(cfg, recorder, units_root=scratch / f"units{workers}", data=data, executor="ray")
        finally:
            report._figures = draw
    finally:
        ray.shutdown()
    record = recorder.as_dict()
    return {"clock": clock, "units_compute_s": record["units_compute_s"], "units_cpu_s": record["units_cpu_s"],
            "execution": record["execution"],
            "results": without_timings(out["results"])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="amazon2014-instruments")
    parser.add_argument("--scale", default="smoke")
    parser.add_argument("--n-seeds", type=int, default=2, help="seeds (each seed is one unit per model)")
    parser.add_argument("--tiny", action="store_true",
                        help="synthetic data (one seed) and 1-epoch models: seconds, for the tests")
    parser.add_argument("--results-dir", default="")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    with tempfile.TemporaryDirectory(prefix="bench_executor_") as tmp:
        scratch = Path(tmp)
        tiny = dict(dim=4, max_epochs=1, patience=1, cf_outer=1, cf_inner=1, valid_candidates=10, n_candidates=10,
                    explain_users=20, explain_k=2) if args.tiny else {}
        cfg = nar.NARConfig.from_scale(args.scale, dataset=args.dataset, n_seeds=1 if args.tiny else args.n_seeds, n_threads=1,
                                       device="cpu", results_dir=str(scratch), **tiny)
        data = nar.synthetic_data(n_users=60, n_items=40, n_features=8) if args.tiny else None
        rec = BenchRecorder("bench_executor", config=cfg, dataset="synthetic" if args.tiny else cfg.dataset, threads=1,
                            seed=cfg.seed, results_dir=args.results_dir or None,
                            name=f"bench_executor__{'tiny' if args.tiny else args.scale}__nar")
        runs = {workers: run_on_ray(workers, cfg, data, scratch) for workers in (1, 2)}
        if json.dumps(runs[1]["results"], sort_keys=True) != json.dumps(runs[2]["results"], sort_keys=True):
            raise RuntimeError("1 and 2 workers computed different numbers; the timing would compare different work")
    rows = []
    for workers, run in runs.items():
        clock = run["clock"]
        rec.add_worker_cpu(run["units_cpu_s"])
        rec.timed(f"nar protocol, ray, {workers} worker(s)", clock.wall_s, clock.cpu_s + run["units_cpu_s"],
                  units_compute_s=run["units_compute_s"], units_cpu_s=run["units_cpu_s"], units=run["execution"]["computed"])
        rows.append({"workers": workers, "wall_s": clock.wall_s, "units_compute_s": run["units_compute_s"],
                     "units_cpu_s": run["units_cpu_s"],
                     "ideal_wall_s": run["units_compute_s"] / workers, **run["execution"]})
    speedup = runs[1]["clock"].wall_s / runs[2]["clock"].wall_s
    rec.add_metric(MetricRow.from_values("speed", rec.dataset, "NAR chapter protocol", "speed-up, 2 vs 1 workers",
                                         [speedup], higher_is_better=True))
    rec.add_table("executor", rows)
    logging.info("1 worker %.1f s, 2 workers %.1f s: speed-up %.2f", runs[1]["clock"].wall_s, runs[2]["clock"].wall_s,
                 speedup)
    print(rec.finish())


if __name__ == "__main__":
    main()
