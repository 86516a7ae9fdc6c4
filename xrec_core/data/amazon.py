"""Amazon review datasets (McAuley et al.): 2014 and 2018 5-core JSON-lines files.

2014 records: ``reviewerID, asin, reviewerName, helpful, reviewText, overall, summary,
unixReviewTime, reviewTime``. 2018 records: ``overall, verified, reviewTime, reviewerID, asin,
style, reviewerName, reviewText, summary, unixReviewTime, vote`` (``vote`` replaces ``helpful``;
``reviewText``/``summary`` may be missing). Both map to the common review frame
``user, item, rating, time, text, summary``; the file is streamed through pyarrow
(:func:`xrec_core.data.stream.amazon_batches`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .stream import REVIEW_COLUMNS, amazon_batches, collect

__all__ = ["REVIEW_COLUMNS", "parse_amazon_json"]


def parse_amazon_json(path: str | Path) -> pd.DataFrame:
    """Parse a (gzipped) Amazon 2014 or 2018 JSON-lines review file into the common review frame."""
    return collect(amazon_batches(path), progress=False)
