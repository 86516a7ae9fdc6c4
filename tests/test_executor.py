"""Units of work run serially or on a local Ray: same results, retries, resumption either way."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest

from xrec_core import cli
from xrec_core.executor import ExecutorError, Resources, Unit, check_executor, run_units
from xrec_core.records import RunRecorder, UnitStore

CONFIG = {"paper": "toy", "k": 3}


def square_and_log(x: int, calls: str) -> dict:
    """A unit: appends one line to ``calls`` per computation (so the test counts computations across processes)."""
    with open(calls, "a") as handle:
        handle.write(f"{x}\n")
    return {"x": x, "square": x * x, "data_sum": None}


def sum_with_data(x: int, data: list, calls: str) -> dict:
    with open(calls, "a") as handle:
        handle.write(f"{x}\n")
    return {"x": x, "value": x + sum(data)}


def die_once(x: int, marker: str, calls: str) -> dict:
    """Kills its worker process the first time it runs (a machine lost mid-unit), then succeeds."""
    if not os.path.exists(marker):
        Path(marker).write_text("died")
        os._exit(1)
    return square_and_log(x, calls)


def fail_on(x: int, bad: int, calls: str) -> dict:
    if x == bad:
        raise RuntimeError(f"unit {x} failed")
    return square_and_log(x, calls)


def _count(calls: Path) -> int:
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def test_serial_computes_each_unit_once(tmp_path):
    calls = tmp_path / "calls.txt"
    units = [Unit(f"u{x}", square_and_log, (x, str(calls))) for x in range(4)]
    first = run_units(UnitStore(tmp_path / "units", CONFIG), units)
    assert [first.results[f"u{x}"]["square"] for x in range(4)] == [0, 1, 4, 9]
    assert first.execution == {"executor": "serial", "address": "local", "units": 4, "computed": 4, "workers": 1,
                               "hosts": {socket.gethostname(): 4}, "failed": 0}
    again = run_units(UnitStore(tmp_path / "units", CONFIG), units)
    assert _count(calls) == 4 and again.execution["computed"] == 0 and again.results == first.results


def test_unknown_executor_and_duplicate_keys(tmp_path):
    store = UnitStore(tmp_path, CONFIG)
    with pytest.raises(ValueError, match="Unknown executor 'dask'; valid: serial, ray"):
        run_units(store, [], executor="dask")
    with pytest.raises(ValueError, match="unique"):
        run_units(store, [Unit("a", square_and_log, (1, "x")), Unit("a", square_and_log, (2, "x"))])


def test_collected_errors_leave_the_failed_unit_out_and_unstored(tmp_path):
    calls = tmp_path / "calls.txt"
    store = UnitStore(tmp_path / "units", CONFIG)
    run = run_units(store, [Unit(f"u{x}", fail_on, (x, 2, str(calls))) for x in range(3)], errors="collect")
    assert run.failed == {"u2": "RuntimeError: unit 2 failed"} and sorted(run.results) == ["u0", "u1"]
    assert not store.done("u2") and store.done("u1")


def test_a_missing_ray_or_an_unreachable_cluster_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    import importlib.util

    listener = socket.create_server(("127.0.0.1", 0))  # something answers here, as a Ray head would
    port = listener.getsockname()[1]
    check_executor("ray", f"127.0.0.1:{port}")
    listener.close()
    with pytest.raises(ExecutorError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
        check_executor("ray", f"127.0.0.1:{port}")
    with pytest.raises(ExecutorError, match="not host:port"):
        check_executor("ray", "somewhere")
    with pytest.raises(ExecutorError, match="pass --executor ray"):
        check_executor("serial", "10.0.0.1:6379")
    argv = ["run", "nar", "--scale", "smoke", "--output-dir", str(tmp_path), "--results-dir", str(tmp_path)]
    assert cli.main([*argv, "--executor", "ray", "--address", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"xrec: error: cannot reach the Ray cluster at 127.0.0.1:{port}") and err.count("\n") == 1
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(ExecutorError, match=r"needs Ray, which is not installed: pip install"):
        run_units(UnitStore(tmp_path / "units", CONFIG), [], executor="ray")
    assert cli.main([*argv, "--executor", "ray"]) == 2
    assert "xrec: error: executor 'ray' needs Ray, which is not installed" in capsys.readouterr().err
    assert cli.main(["tune", "nar", "--executor", "ray"]) == 2
    assert "needs Ray, which is not installed" in capsys.readouterr().err


def test_run_flags_become_the_notebook_parameters_that_every_protocol_call_receives(tmp_path, monkeypatch):
    import papermill

    from xrec_core.papers import PAPERS

    seen = {}
    monkeypatch.setattr(papermill, "execute_notebook", lambda source, target, **kw: (
        seen.update(kw["parameters"]), open(target, "w").write("{}")))
    listener = socket.create_server(("127.0.0.1", 0))
    address = f"127.0.0.1:{listener.getsockname()[1]}"
    assert cli.main(["run", "nar", "--scale", "smoke", "--executor", "ray", "--address", address,
                     "--output-dir", str(tmp_path), "--results-dir", str(tmp_path)]) == 0
    listener.close()
    assert seen["executor"] == "ray" and seen["ray_address"] == address
    for paper in PAPERS.values():  # each notebook has the parameters and hands them to its protocol call
        cells = json.loads(paper.notebook_path.read_text())["cells"]
        parameters = next("".join(c["source"]) for c in cells if "parameters" in c["metadata"].get("tags", []))
        assert 'executor = "serial"' in parameters and 'ray_address = ""' in parameters, paper.key
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        assert code.count("executor=executor") == 1 and code.count("address=ray_address") == 1, paper.key


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import the tests
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.mark.ray
def test_ray_gives_the_serial_results_and_ships_data_once(tmp_path, local_ray):
    data = list(range(1000))
    def units(name: str) -> list[Unit]:
        return [Unit(f"u{x}", sum_with_data, (x, data, str(tmp_path / f"calls_{name}.txt")), Resources(cpus=1))
                for x in range(4)]

    serial = run_units(UnitStore(tmp_path / "s", CONFIG), units("serial"))
    on_ray = run_units(UnitStore(tmp_path / "r", CONFIG), units("ray"), executor="ray")
    assert on_ray.results == serial.results and on_ray.results["u3"]["value"] == 3 + sum(data)
    assert on_ray.execution["executor"] == "ray" and on_ray.execution["cluster_cpus"] == 2.0
    assert on_ray.execution["computed"] == 4


@pytest.mark.ray
def test_a_unit_whose_worker_dies_is_retried(tmp_path, local_ray):
    calls = tmp_path / "calls.txt"
    units = [Unit(f"u{x}", die_once, (x, str(tmp_path / f"died{x}"), str(calls))) for x in range(2)]
    run = run_units(UnitStore(tmp_path / "units", CONFIG), units, executor="ray", max_retries=2)
    assert {k: v["square"] for k, v in run.results.items()} == {"u0": 0, "u1": 1}
    assert all((tmp_path / f"died{x}").exists() for x in range(2)) and _count(calls) == 2


@pytest.mark.ray
def test_a_run_interrupted_on_ray_resumes_serially(tmp_path, local_ray):
    calls = tmp_path / "calls.txt"
    units = [Unit(f"u{x}", fail_on, (x, 3, str(calls))) for x in range(4)]
    with pytest.raises(Exception, match="unit 3 failed"):
        run_units(UnitStore(tmp_path / "units", CONFIG), units, executor="ray")
    finished = _count(calls)
    assert finished == 3  # the other units finished and were stored before the failure surfaced
    fixed = [Unit(u.key, fail_on, (u.args[0], -1, str(calls))) for u in units]
    resumed = run_units(UnitStore(tmp_path / "units", CONFIG), fixed)
    assert resumed.execution["computed"] == 1 and _count(calls) == 4
    assert [resumed.results[f"u{x}"]["square"] for x in range(4)] == [0, 1, 4, 9]


# --------------------------------------------------------------------------- a chapter's protocol on Ray
TIMING_FIELDS = ("fit_s", "examples_per_s", "seconds")


def without_timings(value):
    """A unit's result without its wall-clock fields (they differ between any two runs)."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMING_FIELDS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


@pytest.mark.ray
def test_a_chapter_protocol_on_ray_equals_the_serial_run_unit_by_unit(tmp_path, local_ray, monkeypatch):
    from test_nar_protocol import toy_config, toy_data

    from xrec_core.experiments import nar
    from xrec_core.experiments.nar import report

    monkeypatch.setattr(report, "_figures", lambda *args, **kwargs: {})  # figures are not what is compared
    cfg = toy_config(tmp_path)  # one seed: 9 units, one per model
    runs = {}
    for executor in ("serial", "ray"):
        rec = RunRecorder("nar", config=cfg, scale=cfg.scale, dataset=cfg.dataset, seed=cfg.seed, results_dir=tmp_path,
                          name=executor)
        out = nar.run_protocol(cfg, rec, units_root=tmp_path / executor, data=toy_data(), executor=executor)
        runs[executor] = (rec.as_dict(), out["results"])
    (serial, serial_units), (on_ray, ray_units) = runs["serial"], runs["ray"]
    models = nar.PAPER_MODELS + nar.EXTRA_MODELS
    assert set(ray_units) == set(models) and all(len(ray_units[m]) == 1 for m in models)
    for model in models:  # unit by unit, every number but wall-clock times
        assert without_timings(ray_units[model]) == without_timings(serial_units[model]), model
    for key in ("metrics", "claims", "health", "tables", "notes"):
        assert json.dumps(on_ray[key], sort_keys=True) == json.dumps(serial[key], sort_keys=True), key
    assert serial["execution"]["executor"] == "serial" and serial["execution"]["computed"] == len(models)
    execution = on_ray["execution"]
    assert execution["executor"] == "ray" and execution["address"] == "local" and execution["cluster_cpus"] == 2.0
    assert execution["computed"] == len(models) and 1 <= execution["workers"] <= 2
    assert execution["hosts"] == {socket.gethostname(): len(models)}

    # the units Ray stored are the serial run's units: a serial rerun over them computes nothing
    rec = RunRecorder("nar", config=cfg, scale=cfg.scale, dataset=cfg.dataset, seed=cfg.seed, results_dir=tmp_path,
                      name="resumed")
    resumed = nar.run_protocol(cfg, rec, units_root=tmp_path / "ray", data=toy_data())
    assert rec.as_dict()["execution"]["computed"] == 0 and resumed["results"] == ray_units


def quadratic(params, report):
    return (params["x"] - 0.5) ** 2


@pytest.mark.ray
def test_tuning_trials_run_in_parallel_batches_that_repeat(tmp_path, local_ray):
    import optuna

    from xrec_core.tuning import Float, study_path, trials_in_parallel, tune

    def study(name):
        return optuna.load_study(study_name="quad", storage=f"sqlite:///{study_path('toy', 'data', tmp_path / name)}")

    space = {"x": Float(-2.0, 2.0)}
    draws = []
    for name in ("first", "again"):
        with trials_in_parallel("ray", resources=Resources(cpus=1), parallel=2):
            result = tune("toy", "data", "quad", quadratic, space=space, direction="minimize", n_trials=4, seed=7,
                          results_dir=tmp_path / name)
        assert result.n_trials_done == 4 and len(study(name).trials) == 4
        draws.append(sorted(t.params["x"] for t in study(name).trials))
    assert draws[0] == draws[1]  # the same study, repeated with the same parallelism, draws the same values
    # the first batch ran on an empty study: its trials are the first draws of TPESampler(seed=7) and (seed=8),
    # which one-trial serial studies with those seeds make too
    for i in range(2):
        tune("toy", "data", "quad", quadratic, space=space, direction="minimize", n_trials=1, seed=7 + i,
             results_dir=tmp_path / f"serial{i}")
        assert study(f"serial{i}").trials[0].params["x"] in draws[0]


@pytest.mark.ray
def test_xrec_tune_on_ray_runs_the_chapter_trials_in_batches(tmp_path, local_ray, monkeypatch, capsys):
    from test_tuning import _chapter

    from xrec_core import executor

    _chapter(tmp_path, monkeypatch, with_hook=True)
    batches = []
    real = executor.map_on_ray

    def spy(fn, calls, resources, **kwargs):
        batches.append((len(calls), resources))
        return real(fn, calls, resources, **kwargs)

    monkeypatch.setattr(executor, "map_on_ray", spy)
    assert cli.main(["tune", "toychapter", "--scale", "full", "-p", "dataset=toy-a", "--model", "B", "--trials", "3",
                     "--results-dir", str(tmp_path / "res"), "--executor", "ray", "--parallel-trials", "2"]) == 0
    assert "3 trials, 0 pruned" in capsys.readouterr().out
    assert batches == [(2, Resources(cpus=1.0, gpus=0.0)), (1, Resources(cpus=1.0, gpus=0.0))]
