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
unit gives the same result wherever it runs. On an existing cluster (``address``) the package's
source goes to the workers with the job (Ray's ``py_modules``), so every worker runs the code the
unit fingerprints name; the workers need the same Python packages installed (``environment.yml``).

Every :func:`run_units` call states how it ran (:func:`xrec_core.records.note_execution`): the
record of the run says which executor, cluster, workers and hosts computed its units.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .records import UnitStore, note_execution

log = logging.getLogger(__name__)

EXECUTORS = ("serial", "ray")
#: seconds to wait for a Ray cluster's address to answer before giving up
CONNECT_TIMEOUT_S = 10.0


class ExecutorError(RuntimeError):
    """The executor asked for cannot run here (Ray missing, cluster unreachable)."""


def check_executor(executor: str, address: str | None = None) -> None:
    """One-line errors, before any work starts, for an unknown executor, a missing Ray or an unreachable cluster.

    ``address`` is ``host:port`` of a Ray head (``ray start --head`` prints it), ``ray://host:port``
    (Ray Client) or ``auto``; empty or ``None`` means a local Ray started for the run.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"Unknown executor {executor!r}; valid: {', '.join(EXECUTORS)}")
    if executor != "ray":
        if address:
            raise ExecutorError(f"a Ray address ({address}) was given but the executor is {executor!r}; "
                                "pass --executor ray")
        return
    try:
        found = importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ExecutorError("executor 'ray' needs Ray, which is not installed: pip install 'ray[default]>=2.50'")
    if address and address != "auto":
        host, _, port = address.removeprefix("ray://").rpartition(":")
        if not host or not port.isdigit():
            raise ExecutorError(f"Ray address {address!r} is not host:port (e.g. 10.0.0.1:6379)")
        try:
            socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            raise ExecutorError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}; "
                                "is `ray start --head` running there?") from None


def unit_resources(n_threads: int, device: str) -> Resources:
    """What one unit of a chapter asks Ray for: ``n_threads`` CPUs (at least one) and one GPU when the
    config computes on CUDA (``device`` ``cuda``/``cuda:N``, or ``auto`` on a machine with CUDA)."""
    from .records import _device_kind

    return Resources(cpus=float(max(1, int(n_threads or 0))), gpus=1.0 if _device_kind(device) == "cuda" else 0.0)


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
    #: small keyword arguments (sent as they are; large data goes in ``args``, which Ray stores once)
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class UnitsRun:
    """The results of :func:`run_units`, by key, and how they were computed (for the record)."""

    results: dict[str, Any]
    execution: dict[str, Any]
    #: ``{key: "ErrorType: message"}`` of the units that raised (with ``errors="collect"``); not stored
    failed: dict[str, str] = field(default_factory=dict)


def run_units(store: UnitStore, units: Sequence[Unit], *, executor: str = "serial", address: str | None = None,
              max_retries: int = 2, progress: bool = False, errors: str = "raise") -> UnitsRun:
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
    errors : {"raise", "collect"}
        ``"raise"``: the first unit that raises stops the run (on Ray: after every other unit has
        finished and been stored). ``"collect"``: a unit that raises is left out of the results and
        named in :attr:`UnitsRun.failed`; nothing is stored for it, so the next run tries it again.
    """
    from .progress import tqdm

    address = address or None
    check_executor(executor, address)
    if errors not in ("raise", "collect"):
        raise ValueError(f"errors must be 'raise' or 'collect', got {errors!r}")
    keys = [u.key for u in units]
    if len(set(keys)) != len(keys):
        raise ValueError("unit keys must be unique")
    todo = [u for u in units if not store.done(u.key)]
    execution: dict[str, Any] = {"executor": executor, "address": address or "local", "units": len(units),
                                 "computed": len(todo)}
    failed: dict[str, str] = {}
    if executor == "ray" and todo:
        execution.update(_run_on_ray(store, todo, address=address, max_retries=max_retries, progress=progress,
                                     failed=failed if errors == "collect" else None))
    else:
        execution.update(workers=1 if todo else 0, hosts={socket.gethostname(): len(todo)} if todo else {})
    results = {}
    for u in tqdm(units, desc="units", disable=not progress or executor == "ray"):
        if u.key in failed:
            continue
        try:
            results[u.key] = store.run(u.key, lambda u=u: u.fn(*u.args, **u.kwargs))
        except Exception as exc:
            if errors == "raise":
                raise
            log.exception("unit %s failed", u.key)
            failed[u.key] = _one_line(exc)
    execution["failed"] = len(failed)
    note_execution(execution)
    return UnitsRun(results, execution, failed)


def _one_line(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


def ray_init(address: str | None) -> None:
    """Connect to the cluster at ``address`` (shipping this package's source to its workers), or start a local Ray."""
    import ray

    if ray.is_initialized():
        return
    check_executor("ray", address)
    runtime_env = {"py_modules": [os.path.dirname(os.path.abspath(__file__))]} if address else None
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 runtime_env=runtime_env)
    except (ConnectionError, RuntimeError) as exc:
        raise ExecutorError(f"could not start or join Ray ({address or 'local'}): {' '.join(str(exc).split())[:300]}") from None


def _call(fn: Callable[..., Any], cpus: float, kwargs: dict[str, Any], *args: Any) -> tuple[Any, float, float, str]:
    """A unit's computation inside a Ray worker, its threads limited to the CPUs it was given.

    Returns the result, its wall and CPU seconds (the worker process computes one unit at a time)
    and the worker (``host:pid``) that computed it.
    """
    from .device import set_threads

    set_threads(max(1, int(cpus)))
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - t0, time.process_time() - cpu0, f"{socket.gethostname()}:{os.getpid()}"


def _cluster(address: str | None, workers: Sequence[str]) -> dict[str, Any]:
    """What the record states about a Ray run: the cluster's size, how many worker processes computed
    units (``workers``: one ``host:pid`` per computed unit) and how many units each host computed."""
    import ray

    resources = ray.cluster_resources()
    hosts: dict[str, int] = {}
    for worker in workers:
        host = worker.rpartition(":")[0]
        hosts[host] = hosts.get(host, 0) + 1
    return {"address": address or "local", "nodes": len([n for n in ray.nodes() if n.get("Alive")]),
            "cluster_cpus": resources.get("CPU", 0.0), "cluster_gpus": resources.get("GPU", 0.0),
            "workers": len(set(workers)), "hosts": dict(sorted(hosts.items()))}


class _SharedArguments:
    """Puts each distinct non-scalar argument object into Ray's object store once."""

    def __init__(self) -> None:
        self.refs: dict[int, Any] = {}
        self.keep: list[Any] = []  # the objects themselves, so that no id is reused while refs are held

    def __call__(self, obj: Any) -> Any:
        import ray

        if isinstance(obj, (int, float, str, bool, type(None))):
            return obj
        if id(obj) not in self.refs:
            self.refs[id(obj)] = ray.put(obj)
            self.keep.append(obj)
        return self.refs[id(obj)]


def map_on_ray(fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]], resources: Resources, *,
               address: str | None = None, max_retries: int = 2) -> tuple[list[Any], dict[str, Any]]:
    """``[fn(*args) for args in calls]`` as concurrent Ray tasks (shared arguments stored once).

    Returns the results in order (an exception object where a call raised) and the cluster info
    of :func:`_cluster` (used by parallel tuning trials).
    """
    import ray

    ray_init(address)
    ref = _SharedArguments()
    remote_call = ray.remote(_call).options(num_cpus=resources.cpus, num_gpus=resources.gpus, max_retries=max_retries,
                                            retry_exceptions=False)
    futures = [remote_call.remote(fn, resources.cpus, {}, *(ref(a) for a in args)) for args in calls]
    out: list[Any] = []
    workers: list[str] = []
    for future in futures:
        try:
            result, _, _, worker = ray.get(future)
        except Exception as error:
            out.append(getattr(error, "cause", None) or error)
            continue
        workers.append(worker)
        out.append(result)
    return out, _cluster(address, workers)


def _run_on_ray(store: UnitStore, todo: Sequence[Unit], *, address: str | None, max_retries: int,
                progress: bool, failed: dict[str, str] | None) -> dict[str, Any]:
    """Run ``todo`` as Ray tasks, storing each result as it arrives; ``failed`` collects errors (else raise)."""
    import ray

    from .progress import tqdm

    ray_init(address)
    ref = _SharedArguments()

    remote_call = ray.remote(_call)
    pending = {}
    for u in todo:
        task = remote_call.options(num_cpus=u.resources.cpus, num_gpus=u.resources.gpus, max_retries=max_retries,
                                   retry_exceptions=False)
        pending[task.remote(u.fn, u.resources.cpus, u.kwargs, *(ref(a) for a in u.args))] = u
    errors: list[tuple[str, BaseException]] = []
    workers: list[str] = []
    with tqdm(total=len(pending), desc="units (ray)", disable=not progress) as bar:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for future in done:
                unit = pending.pop(future)
                try:
                    result, elapsed, cpu, worker = ray.get(future)
                except Exception as error:  # keep collecting: every other finished unit is stored
                    cause = getattr(error, "cause", None) or error
                    errors.append((unit.key, cause))
                    log.error("unit %s failed on Ray: %s", unit.key, _one_line(cause))
                    continue
                workers.append(worker)
                store.save(unit.key, result, elapsed, cpu)
                log.info("unit %s finished on Ray in %.1f s", unit.key, elapsed)
                bar.update(1)
    if errors and failed is None:
        key, first = errors[0]
        raise RuntimeError(f"{len(errors)} unit(s) failed on Ray, first {key}: {_one_line(first)}") from first
    if failed is not None:
        failed.update((key, _one_line(error)) for key, error in errors)
    return {**_cluster(address, workers),
            "unit_resources": [{"cpus": c, "gpus": g} for c, g in sorted({(u.resources.cpus, u.resources.gpus)
                                                                         for u in todo})]}
