"""Units of work run serially or on a local Ray: same results, retries, resumption either way."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from xrec_core.executor import Resources, Unit, run_units
from xrec_core.records import UnitStore

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
    assert first.execution == {"executor": "serial", "units": 4, "computed": 4}
    again = run_units(UnitStore(tmp_path / "units", CONFIG), units)
    assert _count(calls) == 4 and again.execution["computed"] == 0 and again.results == first.results


def test_unknown_executor_and_duplicate_keys(tmp_path):
    store = UnitStore(tmp_path, CONFIG)
    with pytest.raises(ValueError, match="Unknown executor 'dask'; valid: serial, ray"):
        run_units(store, [], executor="dask")
    with pytest.raises(ValueError, match="unique"):
        run_units(store, [Unit("a", square_and_log, (1, "x")), Unit("a", square_and_log, (2, "x"))])


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
