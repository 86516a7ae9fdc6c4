"""Load time and peak memory of reading a large review file: the streamed pyarrow reader against a json + pandas parser.

Generates an Amazon 2018 5-core-format file of ``--n-reviews`` random reviews (gzipped JSON lines,
:mod:`xrec_core.data.synthetic`) in the data layout of a work folder (``amazon2018/Synthetic_Benchmark_5.json.gz``,
so it is read under its derived name ``amazon2018-synthetic-benchmark``), then reads it in a fresh
process per case and records wall and CPU time (the child's, all its threads), peak resident memory
and the reviews kept, with the load average, the thread limits and the ``contended`` flag of every
benchmark record (``benchmarks/_record.py``; the thread limit reaches the children through
``OMP_NUM_THREADS``, which pyarrow's pool also reads):

* ``stream``: :func:`xrec_core.data.load_reviews`, all reviews;
* ``stream + filters``: the same with a 5-core, at most 50 reviews per user and a date range;
* ``json + pandas``: every line through :func:`json.loads` into a list, then one DataFrame (the
  loading a streamed reader replaces).

Peak memory is sampled from ``/proc`` (Linux only).

Writes ``results/bench_data/bench_data__<n>.json``. Not run by the tests at full size (a smoke test
runs it on a few thousand reviews)::

    python benchmarks/bench_data.py --n-reviews 5000000 --work-dir /tmp/bench_data --threads 1
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

from xrec_core.data.synthetic import generate_reviews, write_reviews
from xrec_core.records import MetricRow

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import BenchRecorder  # noqa: E402

DATASET = "amazon2018-synthetic-benchmark"
REL_PATH = "amazon2018/Synthetic_Benchmark_5.json.gz"
FILTERS = "k_core=5,max_per_user=50,since=2013-01-01"
CASES = ("stream", "stream + filters", "json + pandas")
#: reviews generated at once (bounds the generator's own memory)
CHUNK = 500_000


def generate(path: Path, n_reviews: int, seed: int) -> Path:
    """Write ``n_reviews`` random Amazon 2018 reviews to ``path`` (gzipped), in chunks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n_users, n_items = max(2, n_reviews // 10), max(2, n_reviews // 25)
    with open(path, "wb") as out:
        for start in range(0, n_reviews, CHUNK):
            n = min(CHUNK, n_reviews - start)
            part = path.with_name(f".part{start}.json.gz")
            df = generate_reviews(n, n_users=n_users, n_items=n_items, seed=seed + start)
            out.write(write_reviews(part, "amazon2018", df=df).read_bytes())  # gzip members concatenate
            part.unlink()
    return path


def _json_pandas(path: Path) -> pd.DataFrame:
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            r = json.loads(line)
            rows.append((r["reviewerID"], r["asin"], float(r["overall"]), int(r["unixReviewTime"]),
                         r.get("reviewText") or "", r.get("summary") or ""))
    return pd.DataFrame(rows, columns=["user", "item", "rating", "time", "text", "summary"])


class RssSampler:
    """Peak resident memory of this process while a block runs, sampled from ``/proc/self/statm`` every 5 ms.

    The process-wide maximum (``ru_maxrss``) includes the imports' transient peak, which can hide the
    memory of reading a file; the sampled peak over the resident memory at the start does not.
    """

    def __init__(self) -> None:
        self._page = os.sysconf("SC_PAGE_SIZE")
        self.start_mb = self.peak_mb = self._rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss_mb(self) -> float:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * self._page / 2**20

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak_mb = max(self.peak_mb, self._rss_mb())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._rss_mb())


def measure(case: str, data_dir: Path) -> dict[str, float]:
    """Read the benchmark file once (in this process): wall and CPU seconds, peak memory, reviews kept, pyarrow's threads."""
    import pyarrow

    from xrec_core.data import load_reviews

    t0, c0 = time.perf_counter(), time.process_time()
    with RssSampler() as rss:
        if case == "json + pandas":
            df = _json_pandas(data_dir / REL_PATH)
        else:
            name = DATASET + (f"#{FILTERS}" if case == "stream + filters" else "")
            df = load_reviews(name, data_dir, progress=True)
    return {"seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "peak_mb": rss.peak_mb - rss.start_mb,
            "rows": len(df), "process_max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "pyarrow_threads": pyarrow.cpu_count()}


def main(argv: list[str] | None = None) -> Path | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-reviews", type=int, default=5_000_000)
    parser.add_argument("--work-dir", default="", help="where the generated file goes (default: a temporary folder)")
    parser.add_argument("--results-dir", default="")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="thread limit of the reading processes (0: defaults)")
    parser.add_argument("--measure", choices=CASES, help=argparse.SUPPRESS)  # one case, in a child process
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench_data_"))
    if args.measure:
        print(json.dumps(measure(args.measure, work)))
        return None
    path = work / REL_PATH
    if not path.is_file():
        t0 = time.perf_counter()
        generate(path, args.n_reviews, args.seed)
        logging.info("generated %s (%d reviews, %.0f MB) in %.0f s", path, args.n_reviews, path.stat().st_size / 2**20,
                     time.perf_counter() - t0)
    config = {"n_reviews": args.n_reviews, "filters": FILTERS, "seed": args.seed, "cases": list(CASES),
              "threads": args.threads}
    rec = BenchRecorder("bench_data", config=config, dataset=DATASET, threads=args.threads or None, seed=args.seed,
                        results_dir=args.results_dir or None, name=f"bench_data__{args.n_reviews}")
    rec.add_data_files([path], data_dir=work)
    rows = []
    for case in CASES:
        out = subprocess.run([sys.executable, __file__, "--measure", case, "--work-dir", str(work)], check=True,
                             capture_output=True, text=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        logging.info("%s: %.1f s, peak %.0f MB over the start, %d reviews kept", case, result["seconds"], result["peak_mb"],
                     result["rows"])
        rows.append({"case": case, **result})
        rec.timed(case, result["seconds"], result["cpu_s"], rows=result["rows"], peak_mb=result["peak_mb"])
        rec.add_metric(MetricRow.from_values("load", DATASET, case, "load time (s)", [result["seconds"]], higher_is_better=False))
        rec.add_metric(MetricRow.from_values("load", DATASET, case, "load CPU time (s)", [result["cpu_s"]],
                                             higher_is_better=False))
        rec.add_metric(MetricRow.from_values("load", DATASET, case, "peak memory over start (MB)", [result["peak_mb"]],
                                             higher_is_better=False))
    rec.add_table("load", rows)
    rec.note("Generated reviews (xrec_core.data.synthetic), gzipped Amazon 2018 JSON lines; each case runs in a fresh "
             "process; its peak memory is the largest resident set sampled (every 5 ms, /proc/self/statm) while reading, "
             "less the resident set before reading (the imports). Linux only.")
    path = rec.finish()
    print(path)
    return path


if __name__ == "__main__":
    main()
