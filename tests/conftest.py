"""Shared test fixtures.

* ``XREC_DATA`` defaults to ``../shared/data`` beside the repository (what CI has); tests
  that need the real files are skipped with a reason only when that folder is absent.
* Every test writes into its own temporary folder (``tmp_path``); records go to a temporary
  ``XREC_RESULTS`` so the committed ``results/`` is never touched by a test run.
* ``smoke_run(paper)`` executes a paper notebook at ``smoke`` scale once per test session
  and returns its run records, so notebook tests and the site test share one execution.
* ``pytest --nbval`` on ``tests/golden_notebooks/`` re-executes the golden smoke notebooks (marker
  ``notebook``); their kernels inherit this environment, with records in a scratch folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()

os.environ.setdefault("XREC_DATA", str(SHARED_DATA))
_MPL_BACKEND_SET_HERE = "MPLBACKEND" not in os.environ
os.environ.setdefault("MPLBACKEND", "Agg")
# tests run from work trees being edited and write only temporary records; the guard's own tests unset it
os.environ.setdefault("XREC_ALLOW_DIRTY", "1")
# what is not a test function (nbval's notebook cells, whose kernels inherit the environment) writes
# its records here, never into the committed results/ (test functions get their own folder below)
os.environ.setdefault("XREC_RESULTS", tempfile.mkdtemp(prefix="xrec-test-results-"))


def pytest_configure(config):
    # nbval's kernels re-execute the golden notebooks as papermill ran them: with the inline backend
    if _MPL_BACKEND_SET_HERE and getattr(config.option, "nbval", False):
        os.environ.pop("MPLBACKEND", None)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.notebook)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ["XREC_DATA"])
    if not path.is_dir():
        pytest.skip(f"real data folder {path} not present (set XREC_DATA)")
    return path


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(autouse=True)
def _isolated_results(tmp_path, monkeypatch):
    monkeypatch.setenv("XREC_RESULTS", str(tmp_path / "results"))


@pytest.fixture(scope="session")
def smoke_outputs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("smoke")


@pytest.fixture(scope="session")
def smoke_run(smoke_outputs, data_dir):
    """Factory: ``smoke_run("mt")`` -> RunResult of the paper notebook at smoke scale (cached)."""
    from xrec_core.runner import run_paper

    cache: dict[str, object] = {}

    def run(paper: str):
        if paper not in cache:
            cache[paper] = run_paper(paper, "smoke", {"n_threads": 1}, output_dir=smoke_outputs / "notebooks",
                                     results_dir=smoke_outputs / "results", data_dir=data_dir, progress=False)
        return cache[paper]

    return run
