"""Yelp review data: Tang et al. (2015) ``.ss`` files and the Yelp Open Dataset ``review.json``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import CorruptDataError
from .stream import REVIEW_COLUMNS, collect, yelp_open_batches

SENTENCE_SEPARATOR = "<sssss>"


def parse_tang_ss(path: str | Path) -> pd.DataFrame:
    """Parse a Tang et al. ``yelp-201x-seg-20-20.{train,dev,test}.ss`` file.

    Each line is ``user\\t\\titem\\t\\trating\\t\\treview`` with sentences separated by ``<sssss>``.
    The files carry no timestamps: ``time`` is the line number, i.e. file order.
    """
    path = Path(path)
    rows = []
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            parts = line.split("\t\t")
            if len(parts) != 4:
                raise CorruptDataError(f"{path}: line {lineno} has {len(parts)} fields, expected user\\t\\titem\\t\\trating\\t\\treview")
            user, item, rating, review = parts
            try:
                value = float(rating)
            except ValueError as exc:
                raise CorruptDataError(f"{path}: line {lineno}: rating {rating!r} is not a number") from exc
            text = " ".join(s.strip() for s in review.split(SENTENCE_SEPARATOR) if s.strip())
            rows.append((user, item, value, lineno, text, ""))
    return pd.DataFrame(rows, columns=REVIEW_COLUMNS)


def parse_yelp_open(path: str | Path) -> pd.DataFrame:
    """Parse the Yelp Open Dataset ``review.json`` (JSON lines: user_id, business_id, stars, text, date; dates in UTC)."""
    return collect(yelp_open_batches(path), progress=False)
