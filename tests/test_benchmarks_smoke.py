"""Every benchmark script runs at a tiny size and writes a record with the issue-15 benchmark fields.

The scripts run as the README shows (``python benchmarks/<script>.py ...``) in a subprocess that
imports this checkout's package. The numbers themselves are not checked (a smoke size on a shared
machine says nothing about speed), only that the record says how it was taken: wall and CPU
time, load average, torch and BLAS threads, and the ``contended`` flag.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(script: str, args: list[str], results: Path, timeout: int = 900) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "XREC_RESULTS": str(results), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    paths = sorted(results.rglob("bench_*.json"))
    assert len(paths) == 1, paths
    return json.loads(paths[0].read_text())


def _check_benchmark_fields(record: dict, threads: int = 1) -> None:
    b = record["benchmark"]
    assert record["scale"] == "bench"
    assert b["wall_s"] > 0 and b["cpu_s"] > 0
    assert b["contended"] == (b["wall_over_cpu"] > 1.2 or any(r["contended"] for r in b["timed"]))
    assert len(b["load_average"]["start"]) in (0, 3) and len(b["load_average"]["end"]) in (0, 3)
    assert b["requested_threads"] == threads and b["threads"]["torch"] == threads
    assert b["threads"]["blas"] and all(p["num_threads"] == threads for p in b["threads"]["blas"])
    assert b["timed"]
    for row in b["timed"]:
        assert row["wall_s"] >= 0 and row["cpu_s"] >= 0
        assert row["contended"] == (row["wall_over_cpu"] > 1.2)


def test_record_fields_flag_contention():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from _record import timing_fields
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    assert timing_fields(1.0, 1.0)["contended"] is False
    assert timing_fields(1.3, 1.0)["contended"] is True
    assert timing_fields(1.0, 2.0)["contended"] is False  # two threads busy: CPU > wall


def test_set_threads_limits_blas_too():
    from threadpoolctl import threadpool_info

    from xrec_core.device import set_threads, thread_info

    import torch

    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert all(p["num_threads"] == 1 for p in threadpool_info())
        assert thread_info()["torch"] == 1
    finally:
        set_threads(before)


def test_bench_kernels_tiny(tmp_path):
    record = _run("bench_kernels.py", ["--tiny", "--threads", "1", "--results-dir", str(tmp_path)], tmp_path)
    _check_benchmark_fields(record)
    assert {"BPR", "ALS", "GRU encoder"} <= set(record["tables"])
    ours = [r for r in record["tables"]["BPR"] if r["impl"] == "ours"]
    assert ours and 0.0 <= ours[0]["recall50"] <= 1.0


def test_bench_gru_tiny(tmp_path):
    record = _run("bench_gru.py", ["--tiny", "--updates", "1", "--threads", "1", "--results-dir", str(tmp_path)], tmp_path)
    _check_benchmark_fields(record)
    assert all("cpu_s" in r and "contended" in r for r in record["tables"]["throughput"])


def test_bench_mt_tiny(tmp_path):
    record = _run("bench_mt.py", ["--tiny", "--repeats", "1", "--threads", "1", "--results-dir", str(tmp_path)], tmp_path)
    _check_benchmark_fields(record)
    assert all("sweep_cpu_s" in r for r in record["tables"]["ALS sweep"])


def test_bench_mvae_tiny(tmp_path):
    record = _run("bench_mvae.py", ["--scale", "smoke", "--steps", "1", "--batch", "4", "--length", "5", "--vocab", "300",
                                    "--models", "NRT,MVAE", "--threads", "1", "--results-dir", str(tmp_path)], tmp_path)
    _check_benchmark_fields(record)
    for row in record["tables"]["benchmark"]:  # counted work per token times tokens/s is the FLOP rate
        assert row["mflop_per_token"] > 0
        assert row["gflop_per_s"] == pytest.approx(row["mflop_per_token"] * row["tokens_per_s"] / 1e3, rel=1e-9)


@pytest.mark.real_data
@pytest.mark.slow
def test_bench_nar_smoke(tmp_path, data_dir):
    record = _run("bench_nar.py", ["--scale", "smoke", "--epochs", "1", "--threads", "1", "--results-dir", str(tmp_path)],
                  tmp_path)
    _check_benchmark_fields(record)


@pytest.mark.real_data
@pytest.mark.slow
def test_bench_semax_smoke(tmp_path, data_dir):
    record = _run("bench_semax.py", ["--scale", "smoke", "--max-examples", "32", "--threads", "1",
                                     "--results-dir", str(tmp_path)], tmp_path)
    _check_benchmark_fields(record)


def test_bench_peers_tiny(tmp_path):
    """Ours and cornac side by side: one summary row per model whose ratios are the timed rows' CPU ratios."""
    import importlib.util

    record = _run("bench_peers.py", ["--tiny", "--repeats", "2", "--threads", "1", "--results-dir", str(tmp_path)],
                  tmp_path)
    _check_benchmark_fields(record)
    rows = {r["model"]: r for r in record["tables"]["peers"]}
    assert set(rows) == {"PMF", "Biased MF", "HFT", "BPR", "NeuMF", "CTR"}
    timed = record["benchmark"]["timed"]
    for model, row in rows.items():
        assert row["repeats"] == 2
        ours = [t for t in timed if t["model"] == model and t["impl"] == "ours"]
        assert [t["repeat"] for t in ours] == [0, 1]
        assert row["ours_cpu_s"] == pytest.approx(sum(t["cpu_s"] for t in ours) / 2, rel=1e-3, abs=1e-5)
        if importlib.util.find_spec("cornac") is None:
            assert "speed_ratio" not in row
            continue
        theirs = {t["repeat"]: t for t in timed if t["model"] == model and t["impl"] == "cornac"}
        want = [theirs[t["repeat"]]["cpu_s"] / max(t["cpu_s"], 1e-9) for t in ours]
        assert row["speed_ratios"] == pytest.approx(want, rel=1e-2, abs=1e-3)
        assert row["speed_ratio_min"] <= row["speed_ratio"] <= row["speed_ratio_max"]
        assert row["speed_ratio_sd"] >= 0


def test_bench_gpu_tiny_on_cpu(tmp_path):
    """The Python part of benchmarks/gpu.sh: every chapter's models take timed steps and the record says how."""
    record = _run("bench_gpu.py", ["--device", "cpu", "--tiny", "--steps", "1", "--threads", "1",
                                   "--results-dir", str(tmp_path)], tmp_path)
    _check_benchmark_fields(record)
    steps = record["tables"]["steps"]
    assert {r["chapter"] for r in steps} == {"gru", "mt", "mvae", "nar"}
    assert {"GRU", "Embed", "MT-P decoder", "PETER", "MVAE", "NAR", "VBPR", "NCF"} <= {r["model"] for r in steps}
    for r in steps:
        assert r["per_s"] == pytest.approx(r["per_step"] / r["step_wall_s"], rel=1e-6) and r["peak_mb"] > 0
        assert r["device"] == "cpu"
    assert "chapters" not in record["tables"]  # no smoke chapter asked for


def test_gpu_script_refuses_without_cuda():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu.sh")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_gpu.py"), "--device", "cuda"],
                          capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr


def test_run_all_covers_every_benchmark_and_refuses_a_busy_machine():
    script = REPO / "benchmarks" / "run_all.sh"
    dry = subprocess.run(["bash", str(script), "--dry-run"], capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    listed = {word.split("/")[-1] for word in dry.stdout.split() if word.startswith("benchmarks/bench_")}
    # every benchmark script but the GPU check's Python part (run by gpu.sh, listed on its own line)
    assert listed == {p.name for p in (REPO / "benchmarks").glob("bench_*.py")} - {"bench_gpu.py"}
    assert "benchmarks/gpu.sh" in dry.stdout
    busy = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "MAX_LOAD": "-1", "FORCE": "0"})
    assert busy.returncode == 3 and "machine is busy" in busy.stderr


@pytest.mark.real_data
def test_gru_convergence_smoke(tmp_path, data_dir):
    record = _run("gru_convergence.py", ["--dataset", "citeulike-t", "--scale", "smoke", "--cpu-budget", "1",
                                         "--configs", "Embed:16", "GRU:8:k_gru=4,lr=0.003", "--eval-users", "50",
                                         "--results-dir", str(tmp_path)], tmp_path)
    _check_benchmark_fields(record)
    rows = {(r["model"], r["batch_users"]): r for r in record["tables"]["convergence"]}
    assert set(rows) == {("Embed", 16), ("GRU", 8)}
    assert rows[("GRU", 8)]["k_gru"] == 4 and rows[("GRU", 8)]["lr"] == 0.003 and "lr" not in rows[("Embed", 16)]
    floor = record["tables"]["preset"][0]["most_pop_valid_recall50"]
    for (model, batch), row in rows.items():
        curve = [p for p in record["tables"]["curves"] if p["config"] == row["config"]]
        assert curve and row["best_valid_recall50"] == max(p["valid_recall50"] for p in curve)
        assert row["vs_most_pop"] == pytest.approx(row["best_valid_recall50"] / floor)
        # an epoch covers the preset's users at every batch size: 20 updates of 64 users at smoke
        assert row["updates_per_epoch"] == 20 * 64 // batch and curve[0]["updates"] == row["updates_per_epoch"]


def test_gpu_check_runs_each_chapter_smoke_on_ray(tmp_path, monkeypatch):
    """gpu.sh asks bench_gpu.py for Ray chapter runs (issue 17), and run_chapter hands the executor to `xrec run`."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import bench_gpu
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    seen = []
    monkeypatch.setattr(bench_gpu.subprocess, "run",
                        lambda cmd, **kw: seen.append(cmd) or subprocess.CompletedProcess(cmd, 0, "", ""))
    row = bench_gpu.run_chapter("nar", "cuda", 5, tmp_path / "r", tmp_path / "o", "ray")
    assert row["status"] == "finished" and row["executor"] == "ray"
    assert seen[0][seen[0].index("--executor") + 1] == "ray" and "device=cuda" in seen[0]
    assert "--executor ray" in (REPO / "benchmarks" / "gpu.sh").read_text()
