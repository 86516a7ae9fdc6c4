"""Re-execute the chapters' smoke notebooks and store them as the golden copies nbval checks.

    python tests/golden_notebooks/refresh.py nar semax      # or: all

Each notebook runs as ``xrec run <paper> --scale smoke -p device=cpu -p n_threads=1`` runs it (one CPU
thread, so its numbers are exact), except that no folder of this machine is injected as a parameter:
records go to a scratch ``$XREC_RESULTS`` and data comes from ``$XREC_DATA``, so the copy re-executes
anywhere (``pytest --nbval`` gets both from ``tests/conftest.py``). Cells whose output cannot be
compared (:func:`unchecked`) are tagged ``nbval-ignore-output``: they still run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
#: the notebook parameters of a golden run (CPU, one thread: exact numbers)
GOLDEN_PARAMS = {"scale": "smoke", "device": "cpu", "n_threads": 1}
#: a cell whose source names one of these shows committed records (output not compared)
COMMITTED = ("committed_results", "committed_records", "committed_figures", "committed_tuning", "committed_ctr_parity",
             "committed_scale_evidence", "committed_mvae_diagnostic", "committed_global_mean_floor",
             "committed_mostpop_multiples")


def unchecked(cell: nbformat.NotebookNode) -> bool:
    """Whether nbval should run ``cell`` without comparing its output.

    True for the cells showing committed full-scale records (they change with every committed full
    run, not with the code) and for ``ipywidgets.interactive`` views (their function prints through
    ``clear_output`` messages, which nbval does not replay).
    """
    if cell.cell_type != "code":
        return False
    plain = ["".join(o.get("data", {}).get("text/plain", "")) for o in cell.get("outputs", [])]
    return any(name in cell.source for name in COMMITTED) or any(t.startswith("interactive(") for t in plain)


def drop_images(nb: nbformat.NotebookNode) -> None:
    """Remove the figures' pixels (nbval does not compare images; their text stand-in stays)."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            for mime in [m for m in output.get("data", {}) if m.startswith("image/")]:
                del output["data"][mime]


def tag_unchecked_cells(nb: nbformat.NotebookNode) -> None:
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if unchecked(cell) and "nbval-ignore-output" not in tags:
            cell.metadata["tags"] = [*tags, "nbval-ignore-output"]


def golden_copy(raw: dict) -> nbformat.NotebookNode:
    """The golden copy of an executed notebook's JSON: stable ids, unchecked cells tagged, no images or timings."""
    for k, cell in enumerate(raw["cells"]):
        cell.setdefault("id", f"golden-cell-{k}")  # papermill's injected cell has none: a stable one, not a random one
    # through nbformat's reader, which joins each cell's source lines into one string (from_dict keeps
    # the list, and then ``unchecked`` would look for a name among whole lines and miss it)
    nb = nbformat.reads(json.dumps(raw), as_version=4)
    tag_unchecked_cells(nb)
    drop_images(nb)
    nb.metadata.pop("papermill", None)  # this machine's paths and timings
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    return nb


def refresh(paper: str) -> Path:
    import papermill

    from xrec_core.papers import get_paper

    notebook = get_paper(paper).notebook_path
    target = HERE / f"{paper}.ipynb"
    with tempfile.TemporaryDirectory(prefix="xrec-golden-") as tmp:
        saved = os.environ.get("XREC_RESULTS")
        os.environ["XREC_RESULTS"] = str(Path(tmp) / "results")
        executed = Path(tmp) / notebook.name  # papermill writes as it goes: the golden copy changes only at the end
        try:
            papermill.execute_notebook(str(notebook), str(executed), parameters=dict(GOLDEN_PARAMS), progress_bar=False,
                                       cwd=str(notebook.parent))
            raw = json.loads(executed.read_text(encoding="utf-8"))
        finally:
            if saved is None:
                os.environ.pop("XREC_RESULTS")
            else:
                os.environ["XREC_RESULTS"] = saved
    nbformat.write(golden_copy(raw), target)
    return target


def main(argv: list[str] | None = None) -> int:
    from xrec_core.papers import PAPERS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("papers", nargs="+", help=f"paper keys ({', '.join(PAPERS)}) or 'all'")
    args = parser.parse_args(argv)
    for paper in list(PAPERS) if args.papers == ["all"] else args.papers:
        print(f"{paper}: {refresh(paper)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
