"""Execute a paper notebook with papermill and collect the run records it wrote."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .config import ConfigError, check_dataset
from .papers import Paper, get_paper
from .paths import DATA_ENV, REPO_ROOT, results_root
from .progress import PROGRESS_ENV
from .records import ALLOW_DIRTY_ENV, RECORD_MANIFEST_ENV, check_clean_checkout, dataset_slug, read_record_manifest

log = logging.getLogger(__name__)

#: parameters every notebook's ``parameters`` cell has.
COMMON_PARAMETERS = ("dataset", "scale", "seed", "device", "data_dir", "results_dir", "n_threads", "executor",
                     "ray_address")
DEFAULT_OUTPUT_DIR = REPO_ROOT / "outputs"
#: what a kernel whose output is streamed to the log gets: text progress bars, redrawn at most every 20 s
STREAMED_KERNEL_ENV = {PROGRESS_ENV: "text", "TQDM_MININTERVAL": "20"}


@contextmanager
def _environment(updates: dict[str, str]) -> Iterator[None]:
    """Set environment variables (which a kernel started inside inherits), restoring them afterwards."""
    saved = {key: os.environ.get(key) for key in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class RunResult:
    paper: str
    notebook: Path
    records: list[Path] = field(default_factory=list)
    wall_time_s: float = 0.0

    def load_records(self) -> list[dict[str, Any]]:
        out = []
        for p in self.records:
            with open(p) as handle:
                rec = json.load(handle)
            rec["_path"] = str(p)
            out.append(rec)
        return out


def notebook_parameters(paper: Paper) -> dict[str, Any]:
    """The names and defaults of a notebook's ``parameters`` cell."""
    import papermill

    params = papermill.inspect_notebook(str(paper.notebook_path))
    return {name: spec["default"] for name, spec in params.items()}


def validate_parameters(paper: Paper, scale: str, params: dict[str, Any],
                        data_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """One-line errors for an unknown scale, dataset or parameter name, a dataset that lacks a field the
    chapter needs, or an executor that cannot run (Ray missing, cluster unreachable); returns ``params`` with ``dataset`` in its canonical form (a registry or derived name, or
    a path relative to the data folder, never an absolute path).
    """
    valid = notebook_parameters(paper)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ConfigError(f"Unknown parameter(s) {', '.join(unknown)} for {paper.key}; valid: {', '.join(sorted(valid))}")
    if "executor" in params or "ray_address" in params:
        from .executor import check_executor

        try:
            check_executor(str(params.get("executor", valid.get("executor", "serial"))),
                           str(params.get("ray_address") or "") or None)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    cfg_cls = paper.config_class()
    if scale not in cfg_cls.SCALES:
        raise ConfigError(f"Unknown scale {scale!r} for {paper.key}; valid: {', '.join(cfg_cls.SCALES)}")
    dataset = params.get("dataset")
    if dataset is None:
        return dict(params)
    try:
        canonical = check_dataset(cfg_cls, str(dataset), str(data_dir or params.get("data_dir") or "") or None)
    except ConfigError as exc:
        raise ConfigError(f"{paper.key}: {exc}") from exc
    return {**params, "dataset": canonical}


def executed_notebook_path(paper: Paper, scale: str, output_dir: Path, dataset: str | None = None) -> Path:
    suffix = f"__{dataset_slug(dataset)}" if dataset and dataset != paper.default_dataset else ""
    return output_dir / scale / f"{paper.key}{suffix}.ipynb"


def run_paper(name: str, scale: str = "smoke", params: dict[str, Any] | None = None, *,
              output_dir: str | os.PathLike | None = None, results_dir: str | os.PathLike | None = None,
              data_dir: str | os.PathLike | None = None, kernel_name: str = "python3",
              progress: bool = True, log_output: bool | None = None, allow_dirty: bool = False) -> RunResult:
    """Execute one paper notebook at ``scale`` and return the executed notebook and its records.

    Parameters
    ----------
    name : str
        Paper key (``mt``, ``semax``, ``gru``, ``mvae``, ``nar``) or notebook path.
    scale : str
        One of the paper config's ``SCALES`` (``smoke``, ``full``, ``paper`` ...).
    params : dict
        Extra notebook parameters (checked against the notebook's ``parameters`` cell).
    log_output : bool, optional
        Stream the cells' output (the training progress bars and logs) to this process's log;
        default: on for every scale but ``smoke``, whose runs last seconds.
    allow_dirty : bool
        Let a non-smoke run write its record from a checkout with uncommitted changes to
        ``xrec_core/`` or ``notebooks/`` (the record says so); without it such a run is refused
        before it starts.

    Notes
    -----
    The records returned are the ones this run wrote, learnt from the run itself: the kernel
    inherits ``XREC_RECORD_MANIFEST``, to which :meth:`RunRecorder.finish` appends each record's path.
    """
    import papermill

    paper = get_paper(name)
    params = validate_parameters(paper, scale, dict(params or {}), data_dir)
    if scale != "smoke" and not allow_dirty:
        check_clean_checkout()  # refuse now rather than after hours of training
    out_dir = Path(output_dir) if output_dir else DEFAULT_OUTPUT_DIR
    res_dir = results_root(results_dir)
    injected: dict[str, Any] = {"scale": scale, "results_dir": str(res_dir), **params}
    if data_dir:
        injected["data_dir"] = str(Path(data_dir).resolve())
    out_path = executed_notebook_path(paper, scale, out_dir, params.get("dataset"))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = out_path.with_name(f".{out_path.name}.partial.ipynb")
    start = time.time()
    log.info("Executing %s at scale %s -> %s", paper.notebook, scale, out_path)
    stream = scale != "smoke" if log_output is None else log_output
    fd, manifest = tempfile.mkstemp(prefix="xrec-records-", suffix=".txt")
    os.close(fd)
    # the kernel's code that reads data without the data_dir parameter sees the same folder
    env = {**(STREAMED_KERNEL_ENV if stream else {}), RECORD_MANIFEST_ENV: manifest,
           **({ALLOW_DIRTY_ENV: "1"} if allow_dirty else {}), **({DATA_ENV: injected["data_dir"]} if data_dir else {})}
    try:
        with _environment(env):
            papermill.execute_notebook(str(paper.notebook_path), str(tmp_path), parameters=injected,
                                       kernel_name=kernel_name, progress_bar=progress, cwd=str(paper.notebook_path.parent),
                                       log_output=stream)
        records = read_record_manifest(manifest)
    except Exception:
        # keep the partial notebook for debugging next to where the result would be
        failed = out_path.with_name(f"{out_path.stem}.FAILED.ipynb")
        if tmp_path.exists():
            os.replace(tmp_path, failed)
            log.error("Notebook failed; the partially executed notebook is at %s", failed)
        raise
    finally:
        Path(manifest).unlink(missing_ok=True)
    os.replace(tmp_path, out_path)
    return RunResult(paper=paper.key, notebook=out_path, records=records, wall_time_s=time.time() - start)
