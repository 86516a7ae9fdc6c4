"""Amazon review datasets (McAuley et al.): 2014 and 2018 5-core JSON-lines files.

2014 records: ``reviewerID, asin, reviewerName, helpful, reviewText, overall, summary,
unixReviewTime, reviewTime``. 2018 records: ``overall, verified, reviewTime, reviewerID, asin,
style, reviewerName, reviewText, summary, unixReviewTime, vote`` (``vote`` replaces ``helpful``;
``reviewText``/``summary`` may be missing). Both map to the common review frame
``user, item, rating, time, text, summary``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd

from .errors import CorruptDataError

REVIEW_COLUMNS = ["user", "item", "rating", "time", "text", "summary"]


def parse_amazon_json(path: str | Path) -> pd.DataFrame:
    """Parse a (gzipped) Amazon 2014 or 2018 JSON-lines review file into the common review frame."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    r = json.loads(line)
                    rows.append((r["reviewerID"], r["asin"], float(r["overall"]), int(r["unixReviewTime"]),
                                 r.get("reviewText") or "", r.get("summary") or ""))
                except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    raise CorruptDataError(f"{path}: line {lineno} is not an Amazon review record ({exc})") from exc
    except (OSError, EOFError) as exc:
        raise CorruptDataError(f"{path}: cannot be read as {'gzip ' if path.suffix == '.gz' else ''}JSON lines ({exc})") from exc
    return pd.DataFrame(rows, columns=REVIEW_COLUMNS)
