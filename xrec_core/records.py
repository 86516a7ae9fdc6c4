"""Run records, atomic writes and resumable units of work.

Every number the book shows comes from a JSON *run record* written here: the config,
seed, data checksums, code version, package versions, hardware, wall time, metric rows,
curves and claims of one run. Records and checkpoints are written atomically (temporary
file + ``os.replace``), so an interrupted run never leaves a half-written file, and
:class:`UnitStore` keeps one file per finished unit of work (a fold, a model, a seed) so
that a rerun resumes where it stopped.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as _dt
import functools
import hashlib
import json
import math
import os
import platform
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .paths import REPO_ROOT, results_root

RECORD_SCHEMA_VERSION = 1
#: Environment variable: ``1`` lets a non-smoke record be written from a checkout with uncommitted
#: changes (``xrec run --allow-dirty`` sets it for the notebook's kernel); the record then says so.
ALLOW_DIRTY_ENV = "XREC_ALLOW_DIRTY"
#: Environment variable naming a file to which every record written appends its path, one per line;
#: the runner sets it, so it learns which records a run wrote from the run itself.
RECORD_MANIFEST_ENV = "XREC_RECORD_MANIFEST"
#: The package whose Python source :func:`code_hash` covers.
CODE_ROOT = Path(__file__).resolve().parent
#: Folders of the repository whose uncommitted changes make a checkout dirty.
GUARDED_PATHS = ("xrec_core", "notebooks")
_TRACKED_PACKAGES = (
    "numpy", "scipy", "pandas", "torch", "scikit-learn", "gensim", "sacrebleu", "rouge-score",
    "pycocoevalcap", "papermill", "matplotlib", "seaborn", "cornac",
)


# --------------------------------------------------------------------------- atomic I/O
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: a reader sees the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes the file private; give it the mode open() would
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=False, default=_json_default, allow_nan=True)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, to_json(obj) + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through a temporary file, so an interrupted save never corrupts a checkpoint."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


# --------------------------------------------------------------------------- environment capture
def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def code_hash() -> str:
    """SHA-256 of the package's Python source: every ``*.py`` file under :data:`CODE_ROOT`.

    The digest covers the sorted paths relative to the package and the bytes of the
    files (line endings normalised to ``\\n``, so a Windows checkout hashes alike), not data files
    or notebooks. It is computed once per process.
    """
    return _source_sha256(CODE_ROOT)


@functools.lru_cache(maxsize=None)
def _source_sha256(root: Path) -> str:
    return _hash_files(root, [p for p in root.rglob("*.py")
                              if not any(part.startswith(".") for part in p.relative_to(root).parts)])


def _hash_files(root: Path, paths: Iterable[Path]) -> str:
    """SHA-256 over the sorted paths relative to ``root`` and the bytes of the files (``\\n`` line endings)."""
    digest = hashlib.sha256()
    for rel, path in sorted((p.relative_to(root).as_posix(), p) for p in paths):
        data = path.read_bytes().replace(b"\r\n", b"\n")
        digest.update(f"{rel}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def _module_file(root: Path, parts: tuple[str, ...]) -> Path | None:
    """The source file of module ``parts`` (relative to the package ``root``), or ``None``."""
    for candidate in (root.joinpath(*parts).with_suffix(".py") if parts else None,
                      root.joinpath(*parts, "__init__.py")):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def _imported_modules(root: Path, path: Path, package_name: str) -> set[tuple[str, ...]]:
    """Modules of the package ``root`` that the file ``path`` may import, as name parts below the package.

    Every import statement counts, also those inside functions, and so does every string constant
    that names one of the package's modules (``importlib.import_module("xrec_core.models.ctr")``,
    as the model registry does), so the set errs on the side of too many.
    """
    package = path.relative_to(root).parts[:-1]  # the package a relative import starts from
    found: set[tuple[str, ...]] = set()

    def absolute(name: str) -> tuple[str, ...] | None:
        parts = tuple(name.split("."))
        return parts[1:] if parts[0] == package_name else None

    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(p for alias in node.names if (p := absolute(alias.name)) is not None)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package[:len(package) - (node.level - 1)]
                base = anchor + (tuple(node.module.split(".")) if node.module else ())
            else:
                parsed = absolute(node.module or "")
                if parsed is None:
                    continue
                base = parsed
            found.add(base)
            found.update(base + (alias.name,) for alias in node.names)  # kept only where it is a module
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(package_name + "."):
            if (p := absolute(node.value)) is not None:
                found.add(p)
    return found


def module_closure(scope: str, root: Path | None = None) -> list[Path]:
    """Source files that the sub-package or module ``scope`` of the package at ``root`` (default
    :data:`CODE_ROOT`) runs: its own files and every module of the package they import, transitively,
    with the ``__init__`` of each package on the way (static analysis, see :func:`_imported_modules`)."""
    root = root or CODE_ROOT
    parts = tuple(scope.split(".")) if scope else ()
    start = root.joinpath(*parts)
    pending = sorted(start.rglob("*.py")) if start.is_dir() else [_module_file(root, parts)]
    if pending == [None]:
        raise ValueError(f"No module {scope!r} in {root}")
    seen: set[Path] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        rel = path.relative_to(root).parts
        pending.extend(init for i in range(len(rel)) if (init := root.joinpath(*rel[:i], "__init__.py")).is_file())
        for module in _imported_modules(root, path, root.name):
            if (file := _module_file(root, module)) is not None:
                pending.append(file)
    return sorted(seen)


@functools.lru_cache(maxsize=None)
def scoped_code_hash(scope: str) -> str:
    """SHA-256 of the source that the part ``scope`` of the package runs (:func:`module_closure`),
    e.g. ``"experiments.mt"``: a unit of one chapter keeps its fingerprint when another chapter's
    code, the command line or the book changes, and changes when any code it imports does.
    Computed once per process per scope, like :func:`code_hash`."""
    return _hash_files(CODE_ROOT, module_closure(scope, CODE_ROOT))


class DirtyCheckoutError(RuntimeError):
    """A non-smoke record was about to be written from a checkout with uncommitted code changes."""


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def changed_files(root: str | os.PathLike = REPO_ROOT) -> list[str] | None:
    """Files under :data:`GUARDED_PATHS` of the checkout ``root`` that differ from its commit: tracked files
    with uncommitted changes and untracked files git does not ignore (a new module the code imports
    changes what runs as much as an edit does).

    ``None`` when ``root`` is not the top of a git checkout (e.g. the package installed from an sdist).
    """
    root = Path(root).resolve()
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or Path(top.strip()).resolve() != root:
        return None
    status = _git(root, "status", "--porcelain", "--untracked-files=all", "--", *GUARDED_PATHS)
    if status is None:
        return None
    # porcelain lines are "XY path" (or "XY old -> new" for a rename)
    return [line[3:].split(" -> ")[-1] for line in status.splitlines() if line.strip()]


def allow_dirty() -> bool:
    """Whether :data:`ALLOW_DIRTY_ENV` allows writing a non-smoke record from a dirty checkout."""
    return os.environ.get(ALLOW_DIRTY_ENV, "").strip().lower() in ("1", "true", "yes")


def code_version(root: str | os.PathLike = REPO_ROOT) -> dict[str, Any]:
    """The code that ran: package version, git commit, uncommitted changes and the source hash.

    ``git_commit`` and ``git_dirty`` are ``None`` outside a git checkout; ``changed_files`` lists the
    files under :data:`GUARDED_PATHS` that differ from the commit (:func:`changed_files`); ``source_sha256`` is
    :func:`code_hash`; ``allow_dirty`` says whether writing from a dirty checkout was allowed.
    """
    from . import __version__

    changed = changed_files(root)
    commit = _git(Path(root), "rev-parse", "HEAD") if changed is not None else None
    return {"package": __version__, "git_commit": commit.strip() if commit else None,
            "git_dirty": bool(changed) if changed is not None else None, "changed_files": changed or [],
            "source_sha256": code_hash(), "allow_dirty": allow_dirty()}


def check_clean_checkout(root: str | os.PathLike = REPO_ROOT) -> None:
    """Raise :class:`DirtyCheckoutError` (one line, at most 5 files named) when ``root`` has uncommitted
    changes under :data:`GUARDED_PATHS`, unless :func:`allow_dirty`; a non-git install passes."""
    _refuse_dirty(changed_files(root))


def _refuse_dirty(changed: list[str] | None) -> None:
    if not changed or allow_dirty():
        return
    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    raise DirtyCheckoutError(f"Uncommitted changes to {shown}: commit them (finished units are reused) or pass "
                             f"--allow-dirty ({ALLOW_DIRTY_ENV}=1) to write a non-smoke record anyway")


def read_record_manifest(path: str | os.PathLike) -> list[Path]:
    """The record paths listed in a :data:`RECORD_MANIFEST_ENV` file, first write order, each once."""
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []
    return [Path(line) for line in dict.fromkeys(line for line in lines if line)]


def _append_to_manifest(path: Path) -> None:
    manifest = os.environ.get(RECORD_MANIFEST_ENV)
    if not manifest:
        return
    # one write(2) of one short line to a file opened with O_APPEND: concurrent writers never interleave
    fd = os.open(manifest, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, f"{path.resolve()}\n".encode())
    finally:
        os.close(fd)


def package_versions(names: Iterable[str] = _TRACKED_PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {
        "machine": platform.machine(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["gpu_count"] = torch.cuda.device_count()
    except ImportError:
        pass
    return info


# --------------------------------------------------------------------------- metric rows
@dataclass
class MetricRow:
    """One reported number: the mean over ``values`` (folds/seeds) with its spread.

    ``table`` names the paper's table or figure (``"Table 2"``), ``dataset`` the data we ran on,
    ``compare_to`` the paper dataset it is compared with (equal to ``dataset`` when we ran on
    exactly the paper's data, a different name for a stand-in, ``None`` when the paper has no
    such number, e.g. a baseline the paper left out).
    """

    table: str
    dataset: str
    model: str
    metric: str
    value: float
    std: float | None = None
    n: int = 1
    values: list[float] = field(default_factory=list)
    compare_to: str | None = None
    higher_is_better: bool | None = None

    @classmethod
    def from_values(cls, table: str, dataset: str, model: str, metric: str, values: Iterable[float], **kwargs: Any) -> "MetricRow":
        vals = [float(v) for v in values]
        if not vals:
            raise ValueError(f"No values for {model}/{metric}")
        arr = np.asarray(vals, dtype=float)
        std = float(arr.std(ddof=1)) if len(arr) > 1 else None
        return cls(table=table, dataset=dataset, model=model, metric=metric, value=float(arr.mean()), std=std, n=len(arr), values=vals, **kwargs)


@dataclass
class Claim:
    """A qualitative claim of a paper, checked on our numbers (e.g. "SEMAX has the lowest RMSE").

    ``verdict`` is ``"holds"``, ``"fails"`` or ``"untestable"`` (see :mod:`xrec_core.claims`);
    ``holds`` mirrors it (``True`` / ``False`` / ``None``) for readers of older records, and
    ``models`` names the models the claim is about.
    """

    claim: str
    source: str
    holds: bool | None
    evidence: str = ""
    dataset: str = ""
    verdict: str = ""
    models: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.verdict:
            self.verdict = {True: "holds", False: "fails", None: "untestable"}[self.holds]

    @classmethod
    def decided(cls, claim: str, source: str, verdict: Any, *, dataset: str = "", models: Iterable[str] = ()) -> "Claim":
        """A claim from a :class:`xrec_core.claims.Verdict`."""
        return cls(claim, source, verdict.holds, verdict.evidence, dataset, verdict.verdict, list(models))


# --------------------------------------------------------------------------- run recorder
def _slug(text: str) -> str:
    """``text`` with every run of characters unsafe in a file name replaced by ``-``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-") or "x"


def dataset_slug(dataset: str | os.PathLike) -> str:
    """The part of record, unit and figure names that names ``dataset`` (one scheme for all of them).

    A registry name is kept as it is (``amazon2014-instruments``, as in the committed ``results/``);
    a file path becomes its stem plus a short hash of its repository-relative form, so two
    ``reviews.json`` in different folders get different names and a file inside the repository
    gets the same name on every clone.
    """
    text = str(dataset)
    if _slug(text) == text and "." not in text:
        return text
    stem = _slug(Path(text).name.split(".")[0])
    digest = hashlib.sha1(portable_path(text).encode("utf-8")).hexdigest()[:8]
    return f"{stem}-{digest}"


def portable_path(path: str | os.PathLike) -> str:
    """``path`` relative to the repository root when it lies inside it (so records work on any clone)."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(resolved)


def _portable_value(value: Any) -> Any:
    """A config value with any absolute path inside the repository made repository-relative."""
    if isinstance(value, (str, os.PathLike)) and os.path.isabs(value):
        resolved = Path(value).resolve()
        if resolved == REPO_ROOT or REPO_ROOT in resolved.parents:
            return portable_path(resolved) or "."
    return value


def artifact_path(value: str) -> Path:
    """The file an ``artifacts`` entry names: a relative entry is relative to the repository root."""
    path = Path(value)
    return path if path.is_absolute() else REPO_ROOT / path


class RunRecorder:
    """Collects what a run produces and writes its record atomically.

    Examples
    --------
    >>> rec = RunRecorder("mt", config=cfg, scale="smoke", dataset="amazon2014-instruments", seed=1)  # doctest: +SKIP
    >>> rec.add_data_files([path_to_json_gz])                                                        # doctest: +SKIP
    >>> rec.add_metric(MetricRow.from_values("Table 2", "amazon2014-instruments", "MT-P", "MSE", fold_mses))  # doctest: +SKIP
    >>> path = rec.finish()                                                                          # doctest: +SKIP
    """

    #: the checkout that must be clean for a non-smoke record (a test points it at a scratch repository)
    git_root: Path = REPO_ROOT

    def __init__(self, paper: str, *, config: Any, scale: str, dataset: str, seed: int,
                 results_dir: str | os.PathLike | None = None, name: str | None = None) -> None:
        self.paper = paper
        self.scale = scale
        self.dataset = dataset
        self.seed = int(seed)
        config = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
        # paths inside the repository (e.g. ``results_dir``) are stored relative so records hold no machine paths
        self.config = {key: _portable_value(value) for key, value in config.items()}
        self.results_dir = results_root(results_dir) / _slug(paper)
        self.name = name or f"{_slug(paper)}__{_slug(scale)}__{dataset_slug(dataset)}__seed{self.seed}"
        self.started_at = _dt.datetime.now(_dt.timezone.utc)
        self._t0, self._cpu0 = time.perf_counter(), time.process_time()
        self._unit_costs0 = unit_costs()
        self._executions0 = len(_EXECUTIONS)
        self.metrics: list[MetricRow] = []
        self.curves: dict[str, Any] = {}
        self.claims: list[Claim] = []
        self.tables: dict[str, Any] = {}
        self.artifacts: dict[str, str] = {}
        self.data_files: dict[str, dict[str, Any]] = {}
        self.notes: list[str] = []
        self.timings: dict[str, float] = {}
        self.health: list[dict[str, Any]] = []
        self.learning_curves: dict[str, dict[str, Any]] = {}
        self.tuning: dict[str, dict[str, Any]] = {}
        self.untuned: list[str] = []

    # -- collection
    def add_data_files(self, paths: Iterable[str | os.PathLike], data_dir: str | os.PathLike | None = None) -> None:
        """Record the data files a run read: ``{path: {"sha256": ..., "bytes": ..., "verified": ...}}``.

        The path is relative to the data folder (``data_dir``, else the config's ``data_dir``, else
        ``$XREC_DATA``) and never absolute: a file outside that folder, or with no folder configured,
        is named by its parent folder and file name. ``verified`` says whether the registry lists the
        file with this SHA-256 (false for a user's own files, which have no registry checksum).
        """
        from .data.registry import DATASETS
        from .paths import DataRootNotSet, data_root

        known = {rel: sha for spec in DATASETS.values() for rel, sha in spec.sha256.items()}

        try:
            root = data_root(data_dir or self.config.get("data_dir") or None)
        except (DataRootNotSet, FileNotFoundError):
            root = None
        for p in paths:
            path = Path(os.path.abspath(p))
            inside = next((c for c in (path, path.resolve()) if root is not None and root in c.parents), None)
            rel = inside.relative_to(root).as_posix() if inside else (
                path.name if not path.parent.name else f"{path.parent.name}/{path.name}")
            sha = sha256_file(path)
            self.data_files[rel] = {"sha256": sha, "bytes": path.stat().st_size, "verified": known.get(rel) == sha}

    def add_metric(self, row: MetricRow) -> None:
        self.metrics.append(row)

    def add_metrics(self, rows: Iterable[MetricRow]) -> None:
        self.metrics.extend(rows)

    def add_curve(self, name: str, data: Mapping[str, Any]) -> None:
        """Store a curve (e.g. ``{"x": [...], "y": [...], "label": ...}``) that a figure is drawn from."""
        self.curves[name] = dict(data)

    def add_table(self, name: str, rows: list[dict[str, Any]]) -> None:
        """Store a small table of non-metric results (examples of generated text, top features ...)."""
        self.tables[name] = rows

    def add_claim(self, claim: Claim) -> None:
        self.claims.append(claim)

    def add_health(self, checks: Iterable[Any]) -> None:
        """Store training-health checks (:class:`xrec_core.health.HealthCheck` or their dicts)."""
        for c in checks:
            self.health.append(c.as_dict() if hasattr(c, "as_dict") else dict(c))

    def all_health(self) -> list[dict[str, Any]]:
        """The stored checks plus, derived from what the record holds, one convergence check per model
        with learning curves (:func:`xrec_core.health.converged_before_cap`: a fit ended by its epoch cap
        before its patience ran out did not converge) and one tuning-budget check per tunable model
        (:func:`xrec_core.health.tuning_budget`: fewer trials than its rivals, or none). Claims naming a
        model that fails either are untestable."""
        from .health import converged_before_cap, tuning_budget

        return [*self.health, *(c.as_dict() for c in converged_before_cap(self.dataset, self.learning_curves)),
                *(c.as_dict() for c in tuning_budget(self.dataset, self.tuning, self.untuned))]

    def unhealthy(self) -> set[str]:
        """Models that failed a health check so far (claims naming them are untestable)."""
        return {c["model"] for c in self.all_health() if not c["passed"]}

    def add_learning_curve(self, model: str, unit: str, curve: Any) -> None:
        """Store one fit's learning curve (:class:`xrec_core.training.LearningCurve` or its dict)."""
        self.learning_curves.setdefault(model, {})[unit] = curve.as_dict() if hasattr(curve, "as_dict") else dict(curve)

    def add_artifact(self, name: str, path: str | os.PathLike) -> None:
        """Record a file the run wrote (a figure); stored relative to the repository when inside it."""
        self.artifacts[name] = portable_path(path)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def add_tuning(self, model: str, summary: Mapping[str, Any]) -> None:
        """Store a model's hyperparameter study (:func:`xrec_core.tuning.tuning_summary`) under ``tuning``."""
        self.tuning[model] = dict(summary)

    def add_untuned(self, models: Iterable[str]) -> None:
        """Models that have a search space but ran on the config's values (no study): held to the
        tuned models' trial budget by the health check, and named in one standard note."""
        new = [m for m in dict.fromkeys(models) if m not in self.untuned]
        self.untuned.extend(new)
        if new:
            self.note(f"not tuned (no study on {self.dataset} at {self.scale} scale; the config's values were used; "
                      f"`xrec tune {self.paper}` gives every model the same trial budget): {', '.join(new)}")

    # -- output
    @property
    def path(self) -> Path:
        return self.results_dir / f"{self.name}.json"

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": RECORD_SCHEMA_VERSION,
            "paper": self.paper,
            "scale": self.scale,
            "dataset": self.dataset,
            "seed": self.seed,
            "config": self.config,
            "data_files": self.data_files,
            "code_version": code_version(self.git_root),
            "packages": package_versions(),
            "hardware": hardware(),
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "wall_time_s": round(time.perf_counter() - self._t0, 3),
            # CPU seconds of this process (every thread) while the record was open; Ray workers' are in units_cpu_s
            "cpu_time_s": round(time.process_time() - self._cpu0, 3),
            # units of work resumed from an interrupted run count with the time they took then
            **(unit_costs() - self._unit_costs0).as_record(),
            "execution": merged_execution(_EXECUTIONS[self._executions0:]),
            "timings_s": self.timings,
            "metrics": [dataclasses.asdict(m) for m in self.metrics],
            "claims": [dataclasses.asdict(c) for c in self.claims],
            "health": self.all_health(),
            "learning_curves": self.learning_curves,
            "curves": self.curves,
            "tables": self.tables,
            "artifacts": self.artifacts,
            "tuning": self.tuning,
            "untuned": self.untuned,
            "notes": self.notes,
        }

    def finish(self) -> Path:
        """Validate and write the record atomically; return its path.

        A record of any scale but ``smoke`` is refused (:class:`DirtyCheckoutError`) when tracked files
        under :data:`GUARDED_PATHS` have uncommitted changes, unless :data:`ALLOW_DIRTY_ENV` allows it.
        The path is appended to the :data:`RECORD_MANIFEST_ENV` file when that is set.
        """
        for m in self.metrics:
            if not isinstance(m.value, (int, float)) or (isinstance(m.value, float) and math.isnan(m.value)):
                raise ValueError(f"Metric {m.model}/{m.metric} has no finite value: {m.value!r}")
        record = self.as_dict()
        if self.scale != "smoke":
            _refuse_dirty(record["code_version"]["changed_files"])
        path = atomic_write_json(self.path, record)
        _append_to_manifest(path)
        return path


def load_records(root: str | os.PathLike | None = None, paper: str | None = None) -> list[dict[str, Any]]:
    """Load every run record under ``root`` (default: the results folder), optionally one paper's."""
    base = results_root(root)
    pattern = f"{_slug(paper)}/*.json" if paper else "*/*.json"
    records = []
    for path in sorted(base.glob(pattern)):
        with open(path) as handle:
            rec = json.load(handle)
        if isinstance(rec, dict) and rec.get("schema") == RECORD_SCHEMA_VERSION:
            rec["_path"] = str(path)
            records.append(rec)
    return records


def rejudge(record: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A stored record judged again by today's convergence rule, without running anything.

    The convergence checks are derived from the learning curves the record stores
    (:func:`xrec_core.health.converged_before_cap`), so a stricter rule can be applied to a record
    made before it: those checks are recomputed and replace the stored ones, and every claim that
    names a model now failing any check becomes *untestable*, its first verdict and evidence kept
    in its evidence. Metrics, curves and the other checks stay as they were. A model that a rule
    change makes healthy again cannot be judged here (the claims' per-unit values are not stored):
    its claims stay as they are until the run is repeated.

    Returns the new record (with a ``rejudged`` entry naming the code that judged it, when anything
    changed) and the claims that changed.
    """
    from .claims import UNTESTABLE
    from .health import CONVERGENCE_CHECK, converged_before_cap, unhealthy_models

    out = json.loads(json.dumps({k: v for k, v in record.items() if k != "_path"}))
    dataset = out.get("dataset", "")
    checks = [c for c in out.get("health", []) if c.get("check") != CONVERGENCE_CHECK]
    checks += [c.as_dict() for c in converged_before_cap(dataset, out.get("learning_curves", {}))]
    health_changed = (sorted(json.dumps(c, sort_keys=True) for c in checks)
                      != sorted(json.dumps(c, sort_keys=True) for c in out.get("health", [])))
    if health_changed:
        out["health"] = checks
    sick = unhealthy_models(checks)
    changed = []
    for claim in out.get("claims", []):
        named = [m for m in claim.get("models", []) if m in sick]
        if claim.get("verdict") == UNTESTABLE or not named:
            continue
        claim["evidence"] = (f"failed its training-health check: {', '.join(named)} (judged again by today's rule; "
                             f"first {claim['verdict']}: {claim.get('evidence', '')})")
        claim["verdict"], claim["holds"] = UNTESTABLE, None
        changed.append(claim["claim"])
    if health_changed or changed:
        out.setdefault("rejudged", []).append({"at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                                               "code_version": code_version(), "claims_changed": changed})
    return out, changed


def rejudge_records(root: str | os.PathLike | None = None) -> dict[Path, list[str]]:
    """:func:`rejudge` every record under ``root`` (default: the results folder) and write, atomically,
    those whose health or claims changed; returns ``{path: changed claims}`` of the records written.
    Refused from a checkout with uncommitted code changes (:class:`DirtyCheckoutError`), like a record."""
    _refuse_dirty(changed_files())
    written = {}
    for rec in load_records(root):
        new, changed = rejudge(rec)
        if "rejudged" in new and new.get("rejudged") != rec.get("rejudged"):
            written[atomic_write_json(rec["_path"], new)] = changed
    return written


# --------------------------------------------------------------------------- resumable units
#: config fields that say where things are, not what is computed (left out of unit fingerprints)
LOCATION_FIELDS = ("data_dir", "results_dir")
#: config fields that say how a run executes, not what it computes (left out of unit fingerprints)
RUNTIME_FIELDS = ("n_threads", "progress")


def _device_kind(device: Any) -> str:
    """``cuda``/``mps`` for a config's ``device`` that computes there, else ``cpu`` (``""``, ``auto`` without CUDA)."""
    name = str(device or "cpu").split(":")[0]
    if name != "auto":
        return name
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


class UnitStore:
    """One JSON file per finished unit of work, so an interrupted run resumes where it stopped.

    A unit is keyed by a string such as ``"fold3/MT-P"``; :meth:`run` returns the stored result
    when the unit already finished with the same fingerprint, else computes and stores it.
    The fingerprint covers the config and the code, so a changed config or changed code recomputes
    stale units, never reuses them. ``code_scope`` names the part of the package the units run
    (``"experiments.mt"``): the code is then :func:`scoped_code_hash` of it, which leaves out other
    chapters, the command line and the book, so that a long run of one chapter survives work on
    another; without it, the whole package (:func:`code_hash`).

    Left out of the fingerprint: where data and results live (:data:`LOCATION_FIELDS`), and how a
    run executes (:data:`RUNTIME_FIELDS`: a thread count or progress bars change no result beyond
    the order of floating-point sums), so changing them never throws finished units away. ``device``
    is kept only as where the computation ran: ``cpu``, ``auto`` on a machine without CUDA and
    ``""`` are one computation and share units, while units computed on CUDA (other kernels, TF32,
    non-deterministic reductions: differences well above rounding) are kept apart from CPU ones.
    """

    def __init__(self, root: str | os.PathLike, config: Any, code_scope: str | None = None) -> None:
        cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
        cfg = {key: value for key, value in cfg.items() if key not in LOCATION_FIELDS + RUNTIME_FIELDS}
        if "device" in cfg:
            kind = _device_kind(cfg.pop("device"))
            if kind != "cpu":
                cfg["device"] = kind
        self.code_sha256 = scoped_code_hash(code_scope) if code_scope else code_hash()
        self.fingerprint = hashlib.sha256(f"{to_json(cfg)}\n{self.code_sha256}".encode()).hexdigest()[:16]
        self.root = Path(root) / self.fingerprint
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / f"{_slug(key.replace('/', '__'))}.json"

    def done(self, key: str) -> bool:
        return self._path(key).exists()

    def load(self, key: str) -> Any:
        with open(self._path(key)) as handle:
            return json.load(handle)["result"]

    def save(self, key: str, result: Any, elapsed_s: float | None = None, cpu_s: float | None = None) -> None:
        atomic_write_json(self._path(key), {"key": key, "result": result, "elapsed_s": elapsed_s, "cpu_s": cpu_s,
                                            "code_sha256": self.code_sha256,
                                            "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})

    def run(self, key: str, compute: Callable[[], Any]) -> Any:
        """The unit's stored result, or compute, store and return it; its compute time is counted either way.

        Wall seconds and CPU seconds (``time.process_time``: every thread of this process) are both
        stored with the unit, so a record can say what its units cost and whether they waited for a core.
        """
        if self.done(key):
            with open(self._path(key)) as handle:
                stored = json.load(handle)
            _UNIT_COSTS.add(stored.get("elapsed_s"), stored.get("cpu_s"))
            return stored["result"]
        t0, cpu0 = time.perf_counter(), time.process_time()
        result = compute()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        _UNIT_COSTS.add(elapsed, cpu)
        self.save(key, result, elapsed, cpu)
        return json.loads(to_json(result))  # the same types a resumed run would see


@dataclass
class UnitCosts:
    """Wall and CPU seconds of units of work, and how many were stored without them (older versions)."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    untimed: int = 0  # stored by a version that did not time its units
    cpu_untimed: int = 0  # stored before units recorded their CPU time

    def add(self, wall_s: float | None, cpu_s: float | None) -> None:
        """Count one unit's stored (or just measured) seconds; ``None``: the unit did not store them."""
        self.wall_s += wall_s or 0.0
        self.cpu_s += cpu_s or 0.0
        self.untimed += wall_s is None
        self.cpu_untimed += cpu_s is None

    def __sub__(self, other: "UnitCosts") -> "UnitCosts":
        return UnitCosts(self.wall_s - other.wall_s, self.cpu_s - other.cpu_s, self.untimed - other.untimed,
                         self.cpu_untimed - other.cpu_untimed)

    def as_record(self) -> dict[str, Any]:
        """The record's fields: ``units_compute_s``, ``units_cpu_s``, ``units_untimed``, ``units_cpu_untimed``."""
        return {"units_compute_s": round(self.wall_s, 3), "units_cpu_s": round(self.cpu_s, 3),
                "units_untimed": self.untimed, "units_cpu_untimed": self.cpu_untimed}


#: the costs of every unit run or resumed in this process (a resumed unit counts the time it took
#: when it ran), so a record of a resumed run still states what the whole run cost.
_UNIT_COSTS = UnitCosts()


def unit_costs() -> UnitCosts:
    """A copy of this process's unit costs so far (a record subtracts the copy taken when it opened)."""
    return dataclasses.replace(_UNIT_COSTS)


#: how each :func:`xrec_core.executor.run_units` call of this process ran (a record states those since it started)
_EXECUTIONS: list[dict[str, Any]] = []


def note_execution(info: Mapping[str, Any]) -> None:
    """Called by :func:`xrec_core.executor.run_units`: how one batch of units ran (executor, cluster, hosts)."""
    _EXECUTIONS.append(dict(info))


def merged_execution(batches: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One run's execution from its batches of units: executor and address, units (all, computed now, failed),
    the most workers and the cluster seen, and the units computed per host; ``serial`` without any batch."""
    counts = ("units", "computed", "failed")
    out: dict[str, Any] = {"executor": "serial", "address": "local", **dict.fromkeys(counts, 0), "workers": 0,
                           "hosts": {}}
    for batch in batches:
        hosts = dict(out["hosts"])
        for host, n in batch.get("hosts", {}).items():
            hosts[host] = hosts.get(host, 0) + n
        out.update({k: v for k, v in batch.items() if k not in (*counts, "workers", "hosts")},
                   **{k: out[k] + batch.get(k, 0) for k in counts}, workers=max(out["workers"], batch.get("workers", 0)),
                   hosts=hosts)
    return out
