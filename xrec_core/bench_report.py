"""The benchmarks page's summary, computed from run records (issue 15): nothing on it is typed in.

:func:`benchmark_summary_markdown` turns the records of ``results/*/*.json`` into these sections:

* **how each benchmark record was taken**: machine, code, wall/CPU ratio, load average and the
  ``contended`` flag of its ``benchmark`` block (``benchmarks/_record.py``), or that it has none;
* **ours vs cornac**: the newest ``bench_peers`` record's CPU-time ratios (``cornac / ours``, above
  1: ours faster) with their spread over repeats, beside each side's quality;
* **MVAE vs PETER**: from the newest ``bench_mvae`` record, MVAE's training tokens/s over PETER's at
  equal size, and, where the record counted them, the FLOPs each does per token and the FLOP rate
  each reaches (so a lower speed can be read as more work or as slower work);
* **parallel execution**: from the newest full-size ``bench_executor`` record, one chapter's protocol on a
  local Ray with 1 and 2 workers: wall time, the units' CPU seconds and the speed-up (issue 17);
* **GPU**: the newest ``bench_gpu`` record taken on CUDA (per-model throughput and peak memory,
  each chapter's smoke run), or the statement that the GPU path is untested while none exists;
* **full-book compute time**: per chapter and dataset, the ``units_compute_s`` of the chapter's
  ``full`` record (the seconds its units of work took, timed by the unit store with a wall clock,
  resumed units included with the time they took when they ran) and its ``units_cpu_s`` (their CPU
  seconds, where every unit stored them), their totals, and the records whose units were not all timed;
  beside them the wall-clock hours of the tuning trials each record counted (read from the study
  files the record names, :func:`xrec_core.report.study_trials`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from .papers import PAPERS
from .records import atomic_write_text
from .report import _html_table


def _newest(records: Iterable[dict], paper: str, where: Any = None) -> dict | None:
    chosen = [r for r in records if r.get("paper") == paper and (where is None or where(r))]
    return max(chosen, key=lambda r: r.get("started_at", "")) if chosen else None


def _fmt(x: Any, digits: int = 3) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}g}"


def record_conditions(records: Iterable[dict]) -> pd.DataFrame:
    """One row per benchmark record (scale ``bench``): machine, code, wall/CPU, load average, contended."""
    rows = []
    for rec in records:
        if rec.get("scale") != "bench":
            continue
        b = rec.get("benchmark")
        hw = rec.get("hardware", {})
        rows.append({
            "record": Path(rec.get("_path", rec.get("paper", ""))).name,
            "machine": f"{hw.get('cpu_model', hw.get('machine', '?'))}{' + ' + hw['gpu'] if hw.get('gpu') else ''}",
            "code": str(rec.get("code_version", {}).get("git_commit"))[:10],
            "started": rec.get("started_at", ""),
            "wall/CPU": _fmt(b["wall_over_cpu"]) if b else "",
            "load average (start, 1 min)": _fmt((b["load_average"]["start"] or [None])[0]) if b else "",
            "threads": b.get("requested_threads") if b else "",
            "contended": ("yes" if b["contended"] else "no") if b else "not recorded (older record: no benchmark block)",
        })
    return pd.DataFrame(rows)


def peer_ratios(records: Iterable[dict]) -> tuple[pd.DataFrame, dict | None]:
    """The newest ``bench_peers`` record's summary: quality of each side, speed ratio mean +- sd (min to max)."""
    rec = _newest(records, "bench_peers")
    if rec is None:
        return pd.DataFrame(), None
    rows = []
    for r in rec.get("tables", {}).get("peers", []):
        row = {"model": r["model"], "dataset": r["dataset"], "metric": r["metric"], "repeats": r["repeats"],
               "ours": f"{r['ours']:.4f} ± {r['ours_sd']:.4f}", "ours CPU s": _fmt(r["ours_cpu_s"])}
        if "speed_ratio" in r:
            row.update({"cornac": f"{r['cornac']:.4f} ± {r['cornac_sd']:.4f}", "cornac CPU s": _fmt(r["cornac_cpu_s"]),
                        "speed ratio (cornac/ours CPU)": f"{r['speed_ratio']:.2f} ± {r['speed_ratio_sd']:.2f} "
                                                         f"({r['speed_ratio_min']:.2f} to {r['speed_ratio_max']:.2f})"})
        rows.append(row)
    return pd.DataFrame(rows), rec


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def tuning_seconds(record: dict) -> tuple[float, int]:
    """Wall-clock seconds of the tuning trials ``record`` counted, summed over its models' studies, and
    how many of those trials have no known duration (cut off with their process; not in the sum).

    ``(0.0, 0)`` for a record without tuning; ``(nan, 0)`` when a study file it names is not in this checkout.
    """
    from .report import study_trials

    total, untimed = 0.0, 0
    for model in record.get("tuning", {}):
        trials = study_trials(record, model)
        if trials is None:
            return math.nan, 0
        total += float(trials["duration_s"].sum())
        untimed += int(trials["duration_s"].isna().sum())
    return total, untimed


def mvae_vs_peter(records: Iterable[dict]) -> str:
    """The "MVAE vs PETER" paragraph from the newest ``bench_mvae`` record (empty without one)."""
    rec = _newest(records, "bench_mvae")
    if rec is None:
        return ""
    rows = {r["model"]: r for r in rec.get("tables", {}).get("benchmark", [])}
    if not {"MVAE", "PETER"} <= set(rows):
        return ""
    mvae, peter = rows["MVAE"], rows["PETER"]
    flag = "**contended**" if rec.get("benchmark", {}).get("contended") else "not contended"
    text = (f"From `{Path(rec.get('_path', '')).name}` ({flag}, {rec.get('config', {}).get('threads')} thread(s)): MVAE "
            f"trains at **{mvae['tokens_per_s'] / peter['tokens_per_s']:.2f}x** PETER's tokens per second "
            f"({mvae['tokens_per_s']:.0f} against {peter['tokens_per_s']:.0f}).")
    if mvae.get("mflop_per_token") and peter.get("mflop_per_token"):
        work = mvae["mflop_per_token"] / peter["mflop_per_token"]
        text += (f" It does {work:.2f}x PETER's work per token ({mvae['mflop_per_token']:.2f} against "
                 f"{peter['mflop_per_token']:.2f} MFLOP of matrix products and attention, forward and backward: its "
                 f"recognition network and prior networks come on top of the same Transformer), so at PETER's FLOP rate "
                 f"it would reach {1 / work:.2f}x; it reaches {mvae['gflop_per_s'] / peter['gflop_per_s']:.2f}x PETER's "
                 f"FLOP rate ({mvae['gflop_per_s']:.1f} against {peter['gflop_per_s']:.1f} GFLOP/s).")
    return text + "\n"


def full_book_compute(records: Iterable[dict]) -> pd.DataFrame:
    """Per chapter and dataset, the newest ``full`` record's ``units_compute_s`` (and its untimed units)
    and the wall-clock hours of the tuning trials it counted (:func:`tuning_seconds`)."""
    newest: dict[tuple[str, str], dict] = {}
    for rec in records:
        if rec.get("scale") != "full" or rec.get("paper") not in PAPERS or "units_compute_s" not in rec:
            continue
        key = (rec["paper"], rec["dataset"])
        if key not in newest or rec.get("started_at", "") > newest[key].get("started_at", ""):
            newest[key] = rec
    rows = [{"chapter": paper, "dataset": dataset, "compute s": rec["units_compute_s"],
             "compute h": rec["units_compute_s"] / 3600,
             # CPU hours only where every unit stored its CPU time (records from 2026-12-02 on)
             "CPU h": (rec["units_cpu_s"] / 3600 if "units_cpu_s" in rec and not rec.get("units_cpu_untimed")
                       else math.nan),
             "tuning h": tuning[0] / 3600, "tuning trials untimed": tuning[1],
             "untimed units": rec.get("units_untimed", 0),
             "record wall s": rec.get("wall_time_s"), "code": str(rec.get("code_version", {}).get("git_commit"))[:10]}
            for (paper, dataset), rec in sorted(newest.items()) for tuning in [tuning_seconds(rec)]]
    return pd.DataFrame(rows)


def executor_speedup(records: Iterable[dict]) -> str:
    """The newest non-tiny ``bench_executor`` record as a sentence and a table ("" when there is none)."""
    rec = _newest(records, "bench_executor", lambda r: r.get("dataset") != "synthetic")
    if rec is None:
        return ""
    rows = pd.DataFrame(rec.get("tables", {}).get("executor", []))
    speedup = next((m["value"] for m in rec.get("metrics", []) if m.get("metric") == "speed-up, 2 vs 1 workers"), None)
    if rows.empty or speedup is None:
        return ""
    flag = "**contended**" if rec.get("benchmark", {}).get("contended") else "not contended"
    text = (f"From `{Path(rec.get('_path', '')).name}` ({flag}): the {rec.get('config', {}).get('scale', '')} protocol of "
            f"the NAR chapter on `{rec['dataset']}`, every unit a Ray task of one CPU, runs **{speedup:.2f}x** faster on 2 "
            "workers than on 1 (the ideal is the units' summed time over the workers; both runs computed the same "
            "numbers).\n")
    columns = [c for c in ("workers", "wall_s", "units_compute_s", "units_cpu_s", "ideal_wall_s") if c in rows]
    return text + _html_table(rows[columns].round(1))


def benchmark_summary_markdown(records: list[dict]) -> str:
    """The four sections described in the module docstring, as MyST markdown."""
    parts = ["## How each record was taken\n"]
    cond = record_conditions(records)
    if cond.empty:
        parts.append("No benchmark record yet: run `bash benchmarks/run_all.sh` on a quiet machine.\n")
    else:
        n_cont = int((cond["contended"] == "yes").sum())
        n_none = int(cond["contended"].str.startswith("not recorded").sum())
        parts.append(f"{len(cond)} benchmark records; {n_cont} flagged as contended (wall time above 1.2x CPU time), "
                     f"{n_none} taken before records said so. A contended or unflagged record gives an order of "
                     "magnitude, not a speed-up.\n")
        parts.append(_html_table(cond))
    parts.append("## Ours vs cornac\n")
    peers, rec = peer_ratios(records)
    if rec is None:
        parts.append("No `bench_peers` record yet: run `python benchmarks/bench_peers.py`.\n")
    else:
        flag = "**contended**" if rec.get("benchmark", {}).get("contended") else "not contended"
        parts.append(f"From `{Path(rec.get('_path', '')).name}` ({flag}). Each repeat fits both implementations "
                     "alternately in one process; the speed ratio is cornac's fit CPU time over ours (above 1: ours "
                     "is faster), mean ± standard deviation over repeats (minimum to maximum); quality is mean ± "
                     "standard deviation over the same repeats.\n")
        parts.append(_html_table(peers))
    mvae = mvae_vs_peter(records)
    if mvae:
        parts.append("## MVAE vs PETER\n")
        parts.append(mvae)
    executor = executor_speedup(records)
    if executor:
        parts.append("## Parallel execution\n")
        parts.append(executor)
    parts.append("## GPU\n")
    gpu = _newest(records, "bench_gpu", lambda r: str(r.get("config", {}).get("device", "")).startswith("cuda"))
    if gpu is None:
        parts.append("**The GPU path is untested.** No record from a GPU machine exists yet: `bash benchmarks/gpu.sh` "
                     "on a CUDA machine writes one (paper-size training steps of every neural model with throughput "
                     "and peak memory, and every chapter's smoke run with `device=cuda`).\n")
    else:
        chapters = gpu.get("tables", {}).get("chapters", [])
        done = sum(c["status"] == "finished" for c in chapters)
        parts.append(f"From `{Path(gpu.get('_path', '')).name}` on {gpu['config'].get('gpu')}: {done} of "
                     f"{len(chapters)} chapter smoke runs finished on the GPU.\n")
        steps = pd.DataFrame(gpu.get("tables", {}).get("steps", []))
        if not steps.empty:
            parts.append(_html_table(steps[[c for c in ("chapter", "model", "sizes", "unit", "per_s", "step_wall_s", "peak_mb")
                                            if c in steps]]))
        if chapters:
            parts.append(_html_table(pd.DataFrame(chapters)[["chapter", "status", "wall_s"]]))
    parts.append("## Full-book compute time\n")
    full = full_book_compute(records)
    if full.empty:
        parts.append("No `full` chapter record yet.\n")
    else:
        untimed = int(full["untimed units"].sum())
        parts.append(f"Summed over the newest `full` record of each chapter and dataset: **{full['compute s'].sum() / 3600:.1f} "
                     f"hours** of unit compute time ({full['compute s'].sum():.0f} s; each unit of work timed by the unit store "
                     "with a wall clock, on the machine of its record)"
                     + (f"; {untimed} units were stored by an older version that did not time them, so this is a lower "
                        "bound" if untimed else "") + ".\n")
        cpu_timed = full.dropna(subset=["CPU h"])
        parts.append(f"CPU time is known for {len(cpu_timed)} of {len(full)} of these records (units store it since "
                     "2026-12-02)" + (f": **{cpu_timed['CPU h'].sum():.1f} CPU hours** against {cpu_timed['compute h'].sum():.1f} "
                                      "wall hours for the same records" if len(cpu_timed) else "") + ".\n")
        tuned = full.dropna(subset=["tuning h"])
        parts.append(f"Tuning came first: **{tuned['tuning h'].sum():.1f} hours** of trials (wall clock, as Optuna "
                     f"stored each trial's start and end) behind {int((tuned['tuning h'] > 0).sum())} of these records"
                     + (f", not counting {_count(int(tuned['tuning trials untimed'].sum()), 'trial')} cut off with its "
                        "process (its time is unknown)" if tuned["tuning trials untimed"].sum() else "")
                     + (f"; {_count(len(full) - len(tuned), 'record')} name{'s' if len(full) - len(tuned) == 1 else ''} a "
                        "study file this checkout lacks or that no longer holds its trials"
                        if len(tuned) < len(full) else "") + ".\n")
        parts.append(_html_table(full))
    return "\n".join(parts)


def write_benchmark_summary(records: list[dict], generated: Path) -> Path:
    """Write ``benchmark_summary.md`` (included by ``book/benchmarks.md``) into ``generated``."""
    path = Path(generated) / "benchmark_summary.md"
    atomic_write_text(path, benchmark_summary_markdown(records))
    return path
