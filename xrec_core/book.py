"""Assemble and build the Jupyter Book site from executed notebooks and run records.

The build never trains anything: chapters are notebooks papermill already executed
(``outputs/<scale>/<key>.ipynb``), and the generated pages (scorecard, datasets, cornac parity,
benchmarks) are rendered from run records and the paper-numbers file. Everything is staged in
``<out_dir>/src`` so the repository itself is never modified by a build.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .bench_report import write_benchmark_summary
from .papers import PAPERS
from .paths import REPO_ROOT
from .records import atomic_write_text, load_records
from .report import (COMMITTED_RESULTS, _html_table, absent_datasets, claims_table, glance_markdown, scorecard,
                     scorecard_markdown)
from .runner import DEFAULT_OUTPUT_DIR

log = logging.getLogger(__name__)

BOOK_SOURCES = ("_config.yml", "_toc.yml", "book")
DEFAULT_BUILD_DIR = REPO_ROOT / "_build"


class MissingNotebooksError(FileNotFoundError):
    """Executed chapter notebooks are missing: run them first."""


def _collect_records(results_dirs: Sequence[str | os.PathLike] | None) -> list[dict]:
    dirs = [Path(d) for d in results_dirs] if results_dirs else [COMMITTED_RESULTS]
    if COMMITTED_RESULTS not in dirs:
        dirs.append(COMMITTED_RESULTS)  # the committed full runs are always part of the book
    seen, records = set(), []
    for d in dirs:
        if not d.is_dir():
            continue
        for rec in load_records(d):
            key = Path(rec["_path"]).name
            if key not in seen:
                seen.add(key)
                records.append(rec)
    return records


def _scorecard_page(records: list[dict], generated: Path, data_dir: str | os.PathLike | None = None) -> None:
    from .plots import scorecard_figure

    card = scorecard(records, absent=absent_datasets(data_dir))
    claims = claims_table(records)
    atomic_write_text(generated / "scorecard_tables.md", scorecard_markdown(card, claims))
    atomic_write_text(generated / "scorecard_glance.md", glance_markdown(card, claims))
    card.to_csv(generated / "scorecard.csv", index=False)
    scorecard_figure(card, generated / "scorecard.png")


def _datasets_page(generated: Path, data_dir: str | os.PathLike | None) -> None:
    from .data.registry import status

    try:
        table = status(data_dir)
    except Exception as exc:  # the data folder is optional for a book build
        for page in ("datasets_status.md", "review_copies.md"):
            atomic_write_text(generated / page, f"```{{note}}\nNo data folder: {exc}\n```\n")
        return
    atomic_write_text(generated / "datasets_status.md", _html_table(table))
    _review_copies_page(table, generated, data_dir)


def _review_copies_page(table: pd.DataFrame, generated: Path, data_dir: str | os.PathLike | None) -> None:
    """What dropping copied reviews leaves of each present Amazon file of the registry (see data.audit)."""
    from .data.audit import review_copies_table
    from .data.registry import DATASETS

    names = [name for name, present in zip(table["dataset"], table["present"])
             if present and name in DATASETS and DATASETS[name].kind == "amazon"]
    text = (_html_table(review_copies_table(names, data_dir)) if names
            else "```{note}\nNo Amazon review file in the data folder of this build.\n```\n")
    atomic_write_text(generated / "review_copies.md", text)


def _records_page(records: list[dict], prefix: str, generated: Path, name: str) -> None:
    """A page of tables for auxiliary records (parity harness, benchmarks)."""
    parts = []
    for rec in records:
        if not rec["paper"].startswith(prefix):
            continue
        parts.append(f"### `{Path(rec['_path']).name}`\n\n{rec['paper']} on {rec['dataset']}, scale {rec['scale']}, "
                     f"{rec['hardware'].get('cpu_model', rec['hardware'].get('machine'))}"
                     f"{' + ' + rec['hardware']['gpu'] if rec['hardware'].get('gpu') else ''}, "
                     f"code {str(rec['code_version'].get('git_commit'))[:10]}, wall time {rec['wall_time_s']:.0f} s.\n")
        for tname, rows in rec.get("tables", {}).items():
            if rows:
                parts.append(f"**{tname}**\n\n" + _html_table(pd.DataFrame(rows)))
        if rec.get("metrics"):
            m = pd.DataFrame(rec["metrics"])[["table", "dataset", "model", "metric", "value", "std", "n"]]
            parts.append(_html_table(m))
    text = "\n".join(parts) if parts else "No records yet: run the benchmark scripts in `benchmarks/`.\n"
    atomic_write_text(generated / name, text)


#: parameters papermill injects that name folders of the machine that ran the notebook
MACHINE_PARAMETERS = ("data_dir", "results_dir")


def publishable_notebook(text: str, data_dir: str | os.PathLike | None = None) -> str:
    """An executed notebook's JSON without the paths of the machine that ran it.

    Papermill's ``injected-parameters`` cell loses its ``data_dir``/``results_dir`` lines (they
    name folders of the machine, not settings of the run), and every output's text has the
    repository, data and home folders replaced by ``<repo>``, ``$XREC_DATA`` and ``~``.
    """
    nb = json.loads(text)
    for cell in nb.get("cells", []):
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            lines = "".join(cell.get("source", "")).splitlines(keepends=True)
            cell["source"] = [line for line in lines if line.split("=")[0].strip() not in MACHINE_PARAMETERS]
    folders = [(str(REPO_ROOT), "<repo>")]
    data = data_dir or os.environ.get("XREC_DATA")
    if data:
        folders.insert(0, (str(Path(data).resolve()), "$XREC_DATA"))
    folders.append((str(Path.home()), "~"))
    out = json.dumps(nb, indent=1, ensure_ascii=False)
    for folder, placeholder in folders:
        if len(folder) > 1:
            out = out.replace(json.dumps(folder)[1:-1], placeholder)
    return out


def stage_book(scale: str = "smoke", notebooks_dir: str | os.PathLike | None = None,
               results_dirs: Sequence[str | os.PathLike] | None = None, out_dir: str | os.PathLike | None = None,
               data_dir: str | os.PathLike | None = None) -> Path:
    """Copy the book sources, the executed chapters and the generated pages into ``<out_dir>/src``."""
    out = Path(out_dir) if out_dir else DEFAULT_BUILD_DIR
    nb_dir = Path(notebooks_dir) if notebooks_dir else DEFAULT_OUTPUT_DIR / scale
    missing = [key for key in PAPERS if not (nb_dir / f"{key}.ipynb").exists()]
    if missing:
        raise MissingNotebooksError(
            f"No executed notebook for {', '.join(missing)} in {nb_dir}. Run `python -m xrec_core run all --scale {scale}` "
            "first (or pass --notebooks-dir)."
        )
    src = out / "src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    for name in BOOK_SOURCES:
        path = REPO_ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("_generated", "chapters"))
        else:
            shutil.copy2(path, src / name)
    chapters = src / "book" / "chapters"
    chapters.mkdir(parents=True, exist_ok=True)
    for key in PAPERS:
        atomic_write_text(chapters / f"{key}.ipynb", publishable_notebook((nb_dir / f"{key}.ipynb").read_text(), data_dir))
    generated = src / "book" / "_generated"
    generated.mkdir(parents=True, exist_ok=True)
    records = _collect_records(results_dirs)
    _scorecard_page(records, generated, data_dir)
    _datasets_page(generated, data_dir)
    _records_page(records, "parity", generated, "parity_records.md")
    _records_page(records, "bench", generated, "benchmark_records.md")
    write_benchmark_summary(records, generated)
    return src


def build_book(scale: str = "smoke", notebooks_dir: str | os.PathLike | None = None,
               results_dirs: Sequence[str | os.PathLike] | None = None, out_dir: str | os.PathLike | None = None,
               data_dir: str | os.PathLike | None = None) -> Path:
    """Stage and build the site; return the folder holding ``index.html``."""
    src = stage_book(scale, notebooks_dir, results_dirs, out_dir, data_dir)
    out = src.parent
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(src),
           "--path-output", str(out), "--builder", "html", "--keep-going"]
    log.info("Building the site: %s", " ".join(cmd[3:]))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    (out / "build.log").write_text(proc.stdout + "\n" + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed (exit {proc.returncode}); see {out / 'build.log'}\n{proc.stderr[-2000:]}")
    return out / "_build" / "html"
