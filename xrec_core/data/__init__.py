"""Data layer: the registry of every dataset the papers use and parsers of their real formats.

Data is found through one setting, ``$XREC_DATA`` (or ``data_dir=``); see
:mod:`xrec_core.data.registry` for the files, checksums and download locations. Parsed data
is cached in-process per (dataset, data folder), since several notebooks read the same files.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pandas as pd

from ..paths import DATA_ENV, data_root
from .amazon import parse_amazon_json
from .citeulike import CiteULikeData, build_citeulike
from .errors import CorruptDataError, MissingDataError
from .mter import MterData, build_mter
from .peter import parse_reviews_pickle, read_index
from .registry import DATASETS, DatasetSpec, check_dataset, dataset_files, get_spec, require, status
from .yelp import parse_tang_ss, parse_yelp_open

__all__ = [
    "DATASETS", "CiteULikeData", "CorruptDataError", "DatasetSpec", "MissingDataError", "MterData", "check_dataset",
    "dataset_files", "get_spec",
    "load_citeulike", "load_mter", "load_peter", "load_reviews", "require", "status",
]


@functools.lru_cache(maxsize=16)
def _load_reviews_cached(name: str, root: str) -> pd.DataFrame:
    spec = get_spec(name)
    files = require(name, root)
    if spec.kind == "amazon":
        return parse_amazon_json(next(iter(files.values())))
    if spec.kind == "yelp-ss":
        parts = [parse_tang_ss(p) for p in files.values()]
        df = pd.concat(parts, ignore_index=True)
        df["time"] = range(len(df))  # .ss files carry no timestamps: file order (train, dev, test)
        return df
    if spec.kind == "yelp-open":
        return parse_yelp_open(next(iter(files.values())))
    raise ValueError(f"{name} is a {spec.kind} dataset, not a review dataset; use load_{spec.kind.split('-')[0]}()")


def load_reviews(name: str, data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Reviews as a DataFrame ``user, item, rating, time, text, summary`` in file order.

    For Amazon 2014/2018 JSON lines, Tang et al. Yelp ``.ss`` files and the Yelp Open Dataset.
    A copy is returned, so callers may modify it.
    """
    return _load_reviews_cached(name, str(data_root(data_dir))).copy()


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
