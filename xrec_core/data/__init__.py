"""Data layer: the registry of every dataset the papers use, parsers of their real formats and any review file.

Data is found through one setting, ``$XREC_DATA`` (or ``data_dir=``); see
:mod:`xrec_core.data.registry` for the files, checksums and download locations, and
:mod:`xrec_core.data.sources` for what else a ``dataset`` may name (an Amazon file added to the
layout, a path to a review file or table). Parsed data is cached in-process per (dataset, data
folder, file versions), since several notebooks read the same files.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pandas as pd

from ..paths import DATA_ENV, data_root
from .citeulike import CiteULikeData, build_citeulike
from .errors import CorruptDataError, MissingDataError
from .mter import MterData, build_mter
from .peter import parse_reviews_pickle, read_index
from .registry import DATASETS, DatasetSpec, check_dataset, get_spec, require, status
from .sources import DataSource, DatasetError, resolve
from .stream import ReviewFilter, amazon_batches, collect, frame_batches, table_batches, yelp_open_batches
from .yelp import parse_tang_ss

__all__ = [
    "DATASETS", "CiteULikeData", "CorruptDataError", "DataSource", "DatasetError", "DatasetSpec", "MissingDataError",
    "MterData", "ReviewFilter", "check_dataset", "dataset_fields", "dataset_files", "get_spec",
    "load_citeulike", "load_mter", "load_peter", "load_reviews", "require", "resolve", "status",
]

#: files larger than this get a progress bar while they are read (``progress=None``)
PROGRESS_MIN_BYTES = 64 << 20


def _versions(files: tuple[Path, ...]) -> tuple[tuple[str, int, int], ...]:
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)


@functools.lru_cache(maxsize=16)
def _load_reviews_cached(name: str, root: str, versions: tuple[tuple[str, int, int], ...], progress: bool) -> pd.DataFrame:
    source = resolve(name, root)
    size = sum(v[1] for v in versions)
    if source.spec is not None:
        require(source.spec.name, root)  # verifies the registry's checksums
    path = source.files[0]
    if source.kind == "amazon":
        batches = amazon_batches(path)
    elif source.kind == "yelp-open":
        batches = yelp_open_batches(path)
    elif source.kind == "table":
        batches = table_batches(path, source.table_format, source.columns)
    elif source.kind == "yelp-ss":
        # Tang's ``\t\t`` field separator is two characters, which pyarrow's CSV reader cannot split on;
        # the files are small (tens of MB), so they are parsed line by line and filtered afterwards.
        df = pd.concat([parse_tang_ss(p) for p in source.files], ignore_index=True)
        df["time"] = range(len(df))  # .ss files carry no timestamps: file order (train, dev, test)
        batches = frame_batches(df, size)
    else:  # peter: a pickled list of records, read by the restricted unpickler
        df = _parse_pickle_cached(str(next(p for p in source.files if p.name == "reviews.pickle")))
        df = df.assign(time=range(len(df)), summary="")
        batches = frame_batches(df, size)
    return collect(batches, source.filters, total_bytes=size, desc=f"reading {Path(path).name}", progress=progress)


def load_reviews(name: str, data_dir: str | os.PathLike | None = None, *, columns: dict[str, str] | None = None,
                 filters: ReviewFilter | None = None, progress: bool | None = None) -> pd.DataFrame:
    """Reviews as a DataFrame ``user, item, rating, time, text, summary`` in file order.

    Parameters
    ----------
    name : str
        A registry name, the derived name of an Amazon file in the layout, or a path to a review file
        (absolute or relative to the data folder) with optional ``#options``; see :mod:`xrec_core.data.sources`.
        Amazon 2014/2018 and Yelp Open JSON lines, Tang ``.ss`` files, PETER ``reviews.pickle`` and review
        tables (CSV, TSV, JSON lines, Parquet) are read.
    columns : dict, optional
        Column map of a review table (``{"user": ..., "item": ..., "rating": ..., "text": ...}``, optional
        ``time``, ``tags``, ``item_text``); tables also carry ``tags`` and ``item_text`` columns when mapped.
    filters : ReviewFilter, optional
        k-core, per-user/per-item caps, date range, applied while the file is streamed.
    progress : bool, optional
        Progress bar while reading; default: for files over 64 MB.

    Returns
    -------
    pandas.DataFrame
        A copy, so callers may modify it. ``time`` is unix seconds, or the position in the file when the
        data has no times.
    """
    source = resolve(name, data_dir, columns=columns, filters=filters)
    if not source.is_reviews:
        raise DatasetError(f"{source.name} is a {source.kind} dataset, not a review dataset; "
                           f"use load_{source.kind.split('-')[0]}()")
    versions = _versions(source.files)
    show = sum(v[1] for v in versions) > PROGRESS_MIN_BYTES if progress is None else progress
    return _load_reviews_cached(source.name, str(data_root(data_dir)), versions, show).copy()


def dataset_files(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The files a run of ``name`` reads (required + present optional ones, a table's YAML column map), for records."""
    source = resolve(name, data_dir)
    if source.spec is not None:
        return list(require(source.spec.name, data_dir, verify=False, optional=True).values())
    return list(source.files)


def dataset_fields(name: str, data_dir: str | os.PathLike | None = None) -> tuple[str, ...]:
    """What ``name`` holds: ``rating``, ``text``, ``time``, ``tags``, ``item_text``, ``tuples`` (see the registry)."""
    return resolve(name, data_dir).fields


@functools.lru_cache(maxsize=8)
def _load_citeulike_cached(name: str, root: str, min_user_likes: int, require_text: bool) -> CiteULikeData:
    spec = get_spec(name)
    if spec.kind != "citeulike":
        raise ValueError(f"{name} is not a CiteULike dataset")
    require(name, root)
    folder = Path(root) / name
    text_rel = "citeulike-a/raw-data.csv" if name == "citeulike-a" else "citeulike-t/rawtext.dat"
    text_file = Path(root) / text_rel
    if require_text and not text_file.is_file():
        raise MissingDataError(
            f"{name}: missing text file {text_file} (expected sha256 not recorded; ordered title + abstract text, "
            f"needed for order-aware models). Get it: {spec.how_to_get}. If the data is elsewhere, set "
            f"{DATA_ENV}=/path/to/data or pass data_dir=."
        )
    return build_citeulike(name, folder, has_item_tag=name == "citeulike-a",
                           text_file=text_file if text_file.is_file() else None, min_user_likes=min_user_likes)


def load_citeulike(name: str, data_dir: str | os.PathLike | None = None, min_user_likes: int = 0,
                   require_text: bool = False) -> CiteULikeData:
    """Load CiteULike-a or -t; keep users with at least ``min_user_likes`` likes.

    ``require_text=True`` raises :class:`MissingDataError` naming the text file when it is absent.
    """
    return _load_citeulike_cached(name, str(data_root(data_dir)), int(min_user_likes), bool(require_text))


@functools.lru_cache(maxsize=4)
def _load_mter_cached(name: str, root: str) -> MterData:
    files = require(name, root)
    by_ext = {Path(rel).suffix.lstrip("."): path for rel, path in files.items()}
    return build_mter(by_ext)


def load_mter(name: str = "mter-cellphones", data_dir: str | os.PathLike | None = None) -> MterData:
    """Load an MTER ``.entry`` dataset with its feature, opinion-word, user and item maps."""
    if get_spec(name).kind != "mter":
        raise ValueError(f"{name} is not an MTER dataset")
    return _load_mter_cached(name, str(data_root(data_dir)))


@functools.lru_cache(maxsize=4)
def _load_peter_cached(name: str, root: str, split: int) -> tuple[pd.DataFrame, dict[str, list[int]]]:
    files = require(name, root)
    pickle_path = next(p for rel, p in files.items() if rel.endswith("reviews.pickle"))
    df = _parse_pickle_cached(str(pickle_path))
    index = {}
    for part in ("train", "validation", "test"):
        index_path = pickle_path.parent / str(split) / f"{part}.index"
        rows = read_index(index_path)
        if rows and not 0 <= min(rows) <= max(rows) < len(df):
            raise CorruptDataError(f"{index_path}: row numbers must lie in [0, {len(df)}) (the reviews in {pickle_path})")
        index[part] = rows
    return df, index


@functools.lru_cache(maxsize=2)
def _parse_pickle_cached(path: str) -> pd.DataFrame:
    return parse_reviews_pickle(path)


def load_peter(name: str, data_dir: str | os.PathLike | None = None, split: int = 1
               ) -> tuple[pd.DataFrame, dict[str, list[int]]]:
    """Load a PETER/NETE dataset: the reviews frame and the ``train``/``validation``/``test`` row indices of ``split``.

    The frame has columns ``user, item, rating, text, feature, adjective, sentiment`` (``text`` is
    the explanation sentence of the Sentires template, the one PETER learns to generate); ``reviews.pickle`` is read with a restricted
    unpickler that refuses anything but plain containers. A copy is returned.
    """
    if get_spec(name).kind != "peter":
        raise ValueError(f"{name} is not a PETER dataset")
    if split not in range(1, 6):
        raise ValueError(f"split must be 1..5, got {split}")
    df, index = _load_peter_cached(name, str(data_root(data_dir)), int(split))
    return df.copy(), {part: list(rows) for part, rows in index.items()}
