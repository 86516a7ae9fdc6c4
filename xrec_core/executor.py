"""Running a protocol's units of work one after another, or across cores, GPUs and machines on Ray.

A chapter's protocol is a list of independent units (fold x model x seed). :func:`run_units` runs
the ones its :class:`~xrec_core.records.UnitStore` has not finished yet and returns every unit's
result, whichever executor ran them:

* ``"serial"`` (the default): in this process, in order.
* ``"ray"``: each unit is a Ray task with the CPUs / GPUs its :class:`Resources` ask for, on a local
  Ray (default) or an existing cluster (``address``). Ray retries a task whose worker died
  (``max_retries``). Results come back to this process, which stores each finished unit at once
  (atomically), so serial and Ray runs resume each other and no finished unit is lost when a run
  stops. Large arguments (the prepared data) go into Ray's object store once and are shared by
  every unit, not shipped once per unit.

We use Ray rather than a scheduler of our own: it brings resource-aware placement, retries, an
object store and launchers for Slurm and Kubernetes clusters.

A unit's function must be importable (a module-level function) and must seed itself, so that a
unit gives the same result wherever it runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .records import UnitStore

log = logging.getLogger(__name__)

EXECUTORS = ("serial", "ray")


@dataclass(frozen=True)
class Resources:
    """What one unit needs: CPU cores (threads it may use) and GPUs (a fraction shares one GPU)."""

    cpus: float = 1.0
    gpus: float = 0.0


@dataclass(frozen=True)
class Unit:
    """One unit of work: its key in the unit store, the function computing it and its arguments."""

    key: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    resources: Resources = field(default_factory=Resources)


@dataclass
class UnitsRun:
    """The results of :func:`run_units`, by key, and how they were computed (for the record)."""

    results: dict[str, Any]
    execution: dict[str, Any]


def run_units(store: UnitStore, units: Sequence[Unit], *, executor: str = "serial", address: str | None = None,
              max_retries: int = 2, progress: bool = False) -> UnitsRun:
    """Run the unfinished ``units`` with ``executor``; return every unit's stored result.

    Parameters
    ----------
    store : UnitStore
        Where finished units are kept (a finished unit is loaded, never recomputed).
    units : sequence of Unit
        Keys must be unique.
    executor : {"serial", "ray"}
    address : str, optional
        Address of a running Ray cluster (``ray start --head`` prints it); default: a local Ray.
    max_retries : int
        How often Ray reruns a unit whose worker died.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"Unknown executor {executor!r}; valid: {', '.join(EXECUTORS)}")
    keys = [u.key for u in units]
    if len(set(keys)) != len(keys):
        raise ValueError("unit keys must be unique")
    todo = [u for u in units if not store.done(u.key)]
    execution: dict[str, Any] = {"executor": executor, "units": len(units), "computed": len(todo)}
    if executor == "ray" and todo:
        execution.update(_run_on_ray(store, todo, address=address, max_retries=max_retries, progress=progress))
    results = {u.key: store.run(u.key, lambda u=u: u.fn(*u.args)) for u in units}
    return UnitsRun(results, execution)


def _call(fn: Callable[..., Any], cpus: float, *args: Any) -> tuple[Any, float]:
    """A unit's computation inside a Ray worker, its threads limited to the CPUs it was given."""
    from .device import set_threads

    set_threads(max(1, int(cpus)))
    t0 = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - t0


def _run_on_ray(store: UnitStore, todo: Sequence[Unit], *, address: str | None, max_retries: int,
                progress: bool) -> dict[str, Any]:
    import ray

    from .progress import tqdm

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    shared: dict[int, Any] = {}

    def ref(obj: Any) -> Any:
        """Each distinct argument object goes into the object store once."""
        if isinstance(obj, (int, float, str, bool, type(None))):
            return obj
        if id(obj) not in shared:
            shared[id(obj)] = ray.put(obj)
        return shared[id(obj)]

    remote_call = ray.remote(_call)
    pending = {}
    for u in todo:
        task = remote_call.options(num_cpus=u.resources.cpus, num_gpus=u.resources.gpus, max_retries=max_retries,
                                   retry_exceptions=False)
        pending[task.remote(u.fn, u.resources.cpus, *(ref(a) for a in u.args))] = u
    failed: list[tuple[str, BaseException]] = []
    with tqdm(total=len(pending), desc="units (ray)", disable=not progress) as bar:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for future in done:
                unit = pending.pop(future)
                try:
                    result, elapsed = ray.get(future)
                except Exception as error:  # keep collecting: every other finished unit is stored
                    failed.append((unit.key, error))
                    log.error("unit %s failed on Ray: %s", unit.key, error)
                    continue
                store.save(unit.key, result, elapsed)
                log.info("unit %s finished on Ray in %.1f s", unit.key, elapsed)
                bar.update(1)
    if failed:
        key, first = failed[0]
        cause = getattr(first, "cause", None) or first
        raise RuntimeError(f"{len(failed)} unit(s) failed on Ray, first {key}: {cause}") from first
    resources = ray.cluster_resources()
    return {"ray_address": address or "local", "nodes": len([n for n in ray.nodes() if n.get("Alive")]),
            "cluster_cpus": resources.get("CPU", 0.0), "cluster_gpus": resources.get("GPU", 0.0),
            "unit_resources": sorted({(u.resources.cpus, u.resources.gpus) for u in todo})}
