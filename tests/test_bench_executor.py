"""The executor benchmark (1 vs 2 Ray workers on the NAR chapter's units) runs at its tiny size and says how it was taken."""

from __future__ import annotations

import pytest
from test_benchmarks_smoke import _check_benchmark_fields, _run


@pytest.mark.ray
@pytest.mark.slow
def test_bench_executor_tiny(tmp_path):
    record = _run("bench_executor.py", ["--tiny", "--results-dir", str(tmp_path)], tmp_path)
    _check_benchmark_fields(record)
    rows = {row["workers"]: row for row in record["tables"]["executor"]}
    assert set(rows) == {1, 2} and all(r["executor"] == "ray" and r["computed"] == 9 for r in rows.values())
    assert rows[1]["cluster_cpus"] == 1.0 and rows[2]["cluster_cpus"] == 2.0
    speedup = next(m for m in record["metrics"] if m["metric"] == "speed-up, 2 vs 1 workers")["value"]
    assert speedup == pytest.approx(rows[1]["wall_s"] / rows[2]["wall_s"], rel=1e-9)
    # the units ran in Ray's workers: their CPU seconds count in each row's CPU time and the whole run's
    timed = {int(r["label"].split()[3]): r for r in record["benchmark"]["timed"]}
    for workers, row in rows.items():
        assert 0 < row["units_cpu_s"] <= timed[workers]["cpu_s"] and timed[workers]["units_cpu_s"] == row["units_cpu_s"]
    assert record["benchmark"]["cpu_s"] >= sum(r["units_cpu_s"] for r in rows.values())
