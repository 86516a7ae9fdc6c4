"""The benchmarks page's summary is computed from records: contended flags, peer ratios, GPU status, compute totals."""

from __future__ import annotations

import re

import numpy as np
import pytest

from xrec_core.bench_report import benchmark_summary_markdown, full_book_compute, peer_ratios, record_conditions


def _bench(paper: str, contended: bool | None, started: str = "2026-12-01T00:00:00+00:00", **extra) -> dict:
    rec = {"paper": paper, "scale": "bench", "dataset": "d", "started_at": started, "_path": f"/r/{paper}/{paper}_{started[:10]}.json",
           "hardware": {"cpu_model": "CPU X"}, "code_version": {"git_commit": "abcdef123456"}, "tables": {}, **extra}
    if contended is not None:
        rec["benchmark"] = {"contended": contended, "wall_over_cpu": 1.5 if contended else 1.01, "requested_threads": 1,
                            "load_average": {"start": [0.1, 0.2, 0.3], "end": [0.1, 0.2, 0.3]}}
    return rec


def _full(paper: str, dataset: str, seconds: float, started: str, untimed: int = 0, cpu: float | None = None) -> dict:
    rec = {"paper": paper, "scale": "full", "dataset": dataset, "started_at": started, "units_compute_s": seconds,
           "units_untimed": untimed, "wall_time_s": 1.0, "code_version": {"git_commit": "0123456789ab"}}
    if cpu is not None:
        rec.update(units_cpu_s=cpu, units_cpu_untimed=0)
    return rec


PEERS = {"peers": [{"model": "BPR", "dataset": "citeulike-t", "metric": "Recall@50", "repeats": 3, "ours": 0.13, "ours_sd": 0.001,
                    "ours_cpu_s": 4.0, "cornac": 0.12, "cornac_sd": 0.002, "cornac_cpu_s": 5.6, "speed_ratio": 1.4,
                    "speed_ratio_sd": 0.05, "speed_ratio_min": 1.35, "speed_ratio_max": 1.46}]}


def test_each_benchmark_record_shows_its_contended_flag():
    table = record_conditions([_bench("bench_a", True), _bench("bench_b", False), _bench("bench_c", None),
                               _full("gru", "x", 10.0, "2026-01-01")])
    assert list(table["contended"].str[:3]) == ["yes", "no", "not"]  # the full chapter record is not a benchmark


def test_peer_ratios_come_from_the_newest_bench_peers_record():
    old = _bench("bench_peers", False, "2026-11-01T00:00:00+00:00", tables={"peers": [{**PEERS["peers"][0], "speed_ratio": 0.1}]})
    new = _bench("bench_peers", False, "2026-12-01T00:00:00+00:00", tables=PEERS)
    table, rec = peer_ratios([new, old])
    assert rec is new
    assert table.loc[0, "speed ratio (cornac/ours CPU)"] == "1.40 ± 0.05 (1.35 to 1.46)"
    assert table.loc[0, "ours"] == "0.1300 ± 0.0010"


def test_full_book_compute_sums_the_newest_full_record_of_each_chapter_and_dataset():
    recs = [_full("gru", "a", 100.0, "2026-11-01"), _full("gru", "a", 300.0, "2026-11-02"), _full("mt", "b", 60.0, "2026-11-01", 5),
            _full("parity", "c", 999.0, "2026-11-01"), _bench("bench_x", False)]
    table = full_book_compute(recs)
    assert list(zip(table["chapter"], table["dataset"], table["compute s"])) == [("gru", "a", 300.0), ("mt", "b", 60.0)]
    text = benchmark_summary_markdown(recs)
    assert "**0.1 hours** of unit compute time (360 s" in text and "5 units were stored by an older version" in text
    assert "CPU time is known for 0 of 2 of these records" in text


def test_full_book_cpu_hours_count_only_records_whose_units_all_stored_cpu_time():
    partly = {**_full("mt", "b", 3600.0, "2026-12-02", cpu=1800.0), "units_cpu_untimed": 2}
    recs = [_full("gru", "a", 7200.0, "2026-12-02", cpu=5400.0), partly]
    table = full_book_compute(recs)
    assert table["CPU h"].iloc[0] == 1.5 and np.isnan(table["CPU h"].iloc[1])
    assert ("CPU time is known for 1 of 2 of these records (units store it since 2026-12-02): **1.5 CPU hours** against 2.0 "
            "wall hours") in benchmark_summary_markdown(recs)


@pytest.mark.parametrize("device, untested", [(None, True), ("cpu", True), ("cuda", False)])
def test_gpu_path_is_untested_until_a_cuda_record_exists(device, untested):
    recs = [] if device is None else [_bench("bench_gpu", False, config={"device": device, "gpu": "GPU Y"},
                                             tables={"steps": [{"chapter": "nar", "model": "NAR", "sizes": "dim=350", "unit": "triples",
                                                                "per_s": 1e5, "step_wall_s": 0.002, "peak_mb": 100.0}],
                                                     "chapters": [{"chapter": "nar", "status": "finished", "wall_s": 30.0},
                                                                  {"chapter": "mt", "status": "timed out after 90 s", "wall_s": 90.0}]})]
    text = benchmark_summary_markdown(recs)
    assert ("The GPU path is untested" in text) is untested
    if not untested:
        assert "1 of 2 chapter smoke runs finished on the GPU" in text and re.search(r"GPU Y", text)


def test_mvae_vs_peter_reads_speed_work_and_flop_rate_from_the_newest_record():
    from xrec_core.bench_report import mvae_vs_peter

    rows = [{"model": "PETER", "tokens_per_s": 1000.0, "mflop_per_token": 6.0, "gflop_per_s": 6.0},
            {"model": "MVAE", "tokens_per_s": 700.0, "mflop_per_token": 7.5, "gflop_per_s": 5.25}]
    old = _bench("bench_mvae", True, "2026-11-01T00:00:00+00:00", tables={"benchmark": [{**rows[0], "tokens_per_s": 1.0}, rows[1]]})
    new = _bench("bench_mvae", False, "2026-12-01T00:00:00+00:00", config={"threads": 1}, tables={"benchmark": rows})
    text = mvae_vs_peter([old, new])
    # 700/1000 = 0.70; work 7.5/6 = 1.25, so 0.80 at PETER's rate; rate 5.25/6 = 0.875
    assert "**0.70x** PETER's tokens per second" in text and "does 1.25x PETER's work" in text
    assert "would reach 0.80x" in text and "reaches 0.88x PETER's FLOP rate" in text and "not contended" in text
    assert "## MVAE vs PETER" in benchmark_summary_markdown([new])
    assert mvae_vs_peter([]) == "" and "## MVAE vs PETER" not in benchmark_summary_markdown([])
    no_flops = _bench("bench_mvae", False, tables={"benchmark": [{"model": m, "tokens_per_s": t} for m, t in (("PETER", 10.0), ("MVAE", 5.0))]})
    assert mvae_vs_peter([no_flops]).count("x") >= 1 and "work" not in mvae_vs_peter([no_flops])


def test_executor_speedup_reads_the_newest_full_size_record():
    from xrec_core.bench_report import executor_speedup

    rows = [{"workers": 1, "wall_s": 800.0, "units_compute_s": 790.0, "units_cpu_s": 780.0, "ideal_wall_s": 790.0},
            {"workers": 2, "wall_s": 400.0, "units_compute_s": 800.0, "units_cpu_s": 790.0, "ideal_wall_s": 400.0}]
    metric = [{"metric": "speed-up, 2 vs 1 workers", "value": 2.0}]
    full = _bench("bench_executor", False, "2026-12-01T00:00:00+00:00", config={"scale": "full"}, tables={"executor": rows},
                  metrics=metric)
    tiny = _bench("bench_executor", True, "2026-12-02T00:00:00+00:00", tables={"executor": rows},
                  metrics=[{"metric": "speed-up, 2 vs 1 workers", "value": 9.0}])
    tiny["dataset"] = "synthetic"
    text = executor_speedup([full, tiny])  # the newer tiny run is the tests' size, not a measurement
    assert "**2.00x** faster on 2 workers" in text and "not contended" in text and "full protocol" in text
    assert "9.00x" not in text and "## Parallel execution" in benchmark_summary_markdown([full, tiny])
    assert executor_speedup([tiny]) == "" and "## Parallel execution" not in benchmark_summary_markdown([])
