"""Where things live: the data root (one setting), results and the repository root."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the folder that holds the datasets (one sub-folder each,
#: e.g. ``$XREC_DATA/amazon2014/reviews_Musical_Instruments_5.json.gz``).
DATA_ENV = "XREC_DATA"
#: Environment variable overriding where run records are written.
RESULTS_ENV = "XREC_RESULTS"

REPO_ROOT = Path(__file__).resolve().parent.parent


class DataRootNotSet(RuntimeError):
    """Raised when no data root is configured."""


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """Return the data root: ``explicit`` if given, else ``$XREC_DATA``.

    There is no silent default: a reader must say where the data is, so that a run
    never picks up a different copy than the one its record names.
    """
    value = explicit if explicit not in (None, "") else os.environ.get(DATA_ENV)
    if not value:
        raise DataRootNotSet(
            f"No data folder configured. Set {DATA_ENV}=/path/to/data (in this repository's "
            f"CI: {DATA_ENV}=../shared/data) or pass data_dir=... ; `python -m xrec_core data status` "
            "lists what each dataset needs and where to download it."
        )
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"Data folder {path} (from {DATA_ENV} or data_dir) does not exist.")
    return path


def units_root(results_dir: str | os.PathLike | None, paper: str, scale: str, dataset: str) -> Path:
    """Where a run's finished units (and checkpoints) go: ``<results>/<paper>/units/<scale>__<dataset>``.

    They sit beside the records, so the units of a committed run travel with the repository and a
    later session on a fresh clone resumes that run instead of starting it again (smoke units and
    model weights are ignored by git).
    """
    return results_root(results_dir) / paper / "units" / f"{scale}__{dataset}"


def results_root(explicit: str | os.PathLike | None = None) -> Path:
    """Return the folder run records go to: ``explicit``, ``$XREC_RESULTS`` or ``<repo>/results``."""
    value = explicit if explicit not in (None, "") else os.environ.get(RESULTS_ENV)
    path = Path(value).expanduser().resolve() if value else REPO_ROOT / "results"
    path.mkdir(parents=True, exist_ok=True)
    return path
