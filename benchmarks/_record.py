"""What every benchmark record carries besides its numbers (issue 15).

A speed number taken on a busy machine is not comparable with one taken on a quiet one, so each
benchmark record says how it was taken:

* ``cpu_s`` (process CPU time, children included) beside ``wall_s`` for the whole run and for
  every timed piece (:meth:`BenchRecorder.timed`);
* the load average (1, 5, 15 min) at the start and at the end;
* the threads in use: torch's intra-op threads and every BLAS / OpenMP pool (threadpoolctl), after
  :func:`xrec_core.device.set_threads`, which limits both;
* ``contended: true`` when a timed piece, or the run as a whole, spent more than
  ``CONTENDED_RATIO`` (1.2) seconds of wall time per second of CPU time (the process waited for a core).

Use::

    rec = BenchRecorder("bench_x", config=cfg, dataset="synthetic", threads=args.threads)
    with Clock() as c:
        work()
    row = rec.timed("model A", c.wall_s, c.cpu_s, examples_per_s=n / c.wall_s)
    print(rec.finish())  # the record holds rec.as_dict()["benchmark"]
"""

from __future__ import annotations

import os
import time
from typing import Any

from xrec_core.device import set_threads, thread_info
from xrec_core.records import RunRecorder

CONTENDED_RATIO = 1.2


def process_cpu_s() -> float:
    """CPU seconds of this process and of its finished, waited-for children (user + system)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (empty where the platform has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return []


def timing_fields(wall_s: float, cpu_s: float) -> dict[str, Any]:
    """``wall_s``, ``cpu_s``, ``wall_over_cpu`` and ``contended`` (wall/CPU > ``CONTENDED_RATIO``)."""
    ratio = wall_s / cpu_s if cpu_s > 0 else float("inf")
    return {"wall_s": round(wall_s, 6), "cpu_s": round(cpu_s, 6), "wall_over_cpu": round(ratio, 4),
            "contended": bool(ratio > CONTENDED_RATIO)}


class Clock:
    """Context manager measuring wall time (``perf_counter``) and this process's CPU time (``process_time``)."""

    def __enter__(self) -> "Clock":
        self.wall_s = self.cpu_s = 0.0
        self._w0, self._c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._w0
        self.cpu_s = time.process_time() - self._c0

    def fields(self) -> dict[str, Any]:
        return timing_fields(self.wall_s, self.cpu_s)


class BenchRecorder(RunRecorder):
    """A :class:`RunRecorder` for benchmarks (``scale="bench"``) whose record has a ``benchmark`` section.

    Parameters
    ----------
    paper : str
        Record folder, e.g. ``"bench_gru"``.
    config : mapping or dataclass
        The benchmark's settings.
    dataset : str
    threads : int or None
        Thread limit for torch and BLAS (applied here with ``set_threads``; ``None``/0: defaults).
    seed, results_dir, name
        As for :class:`RunRecorder`.
    """

    def __init__(self, paper: str, *, config: Any, dataset: str, threads: int | None, seed: int = 0,
                 results_dir: str | os.PathLike | None = None, name: str | None = None) -> None:
        set_threads(threads)
        super().__init__(paper, config=config, scale="bench", dataset=dataset, seed=seed,
                         results_dir=results_dir or None, name=name)
        self.requested_threads = threads
        self._cpu0 = process_cpu_s()
        self._wall0 = time.perf_counter()
        self._load0 = load_average()
        self.timed_rows: list[dict[str, Any]] = []
        self.worker_cpu_s = 0.0

    def add_worker_cpu(self, seconds: float) -> None:
        """Count CPU seconds spent for this benchmark in other processes (Ray workers) in the whole run's
        CPU time, so that work done elsewhere does not read as waiting for a core."""
        self.worker_cpu_s += seconds

    def timed(self, label: str, wall_s: float, cpu_s: float, **extra: Any) -> dict[str, Any]:
        """Record one timed piece (``cpu_s``: the CPU time of the processes that ran it); returns its row."""
        row = {"label": label, **timing_fields(wall_s, cpu_s), **extra}
        self.timed_rows.append(row)
        return row

    def benchmark_section(self) -> dict[str, Any]:
        """The ``benchmark`` section of the record (see the module docstring)."""
        overall = timing_fields(time.perf_counter() - self._wall0, process_cpu_s() - self._cpu0 + self.worker_cpu_s)
        return {
            **overall,
            "contended": bool(overall["contended"] or any(r["contended"] for r in self.timed_rows)),
            "contended_ratio": CONTENDED_RATIO,
            "load_average": {"start": self._load0, "end": load_average()},
            "cpu_count": os.cpu_count(),
            "requested_threads": self.requested_threads,
            "threads": thread_info(),
            "timed": self.timed_rows,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "benchmark": self.benchmark_section()}
