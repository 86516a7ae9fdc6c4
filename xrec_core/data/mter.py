"""MTER phrase-level sentiment tuples (Wang et al., SIGIR 2018 preprocessing of Amazon Cell Phones).

``<prefix>.entry``: one review per line, ``user,item,rating,feature:sentiment feature:sentiment ...``
(0-based user/item/feature ids, sentiment +1/-1). ``.featuremap`` lines ``id=feature=count``;
``.wordmap`` lines ``id=opinion word``; ``.usermap`` lines ``id=reviewerID``; ``.itemmap``
lines ``id=asin=product title``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import CorruptDataError

_ID_PREFIX = re.compile(r"^\d+=")


def _parse_map(path: Path, n_fields: int) -> list[list[str]]:
    """Parse ``id=field=...`` lines; a line that does not start with ``<int>=`` continues the
    previous entry's last field (some product titles contain line breaks)."""
    rows: dict[int, list[str]] = {}
    last: int | None = None
    with open(path, encoding="utf-8", errors="replace") as handle:
        for lineno, line in enumerate(handle, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            match = _ID_PREFIX.match(line)
            if match is None:
                if last is None:
                    raise CorruptDataError(f"{path}: line {lineno} does not start with an integer id")
                rows[last][-1] = f"{rows[last][-1]} {line.strip()}".strip()
                continue
            parts = line.split("=", n_fields - 1)
            last = int(parts[0])
            rows[last] = parts[1:] + [""] * (n_fields - len(parts))
    return [rows.get(i, [""] * (n_fields - 1)) for i in range(max(rows, default=-1) + 1)]


def parse_entry(path: Path) -> pd.DataFrame:
    """Parse a ``.entry`` file into ``user, item, rating, features, sentiments`` (one row per review)."""
    users, items, ratings, feats, sents = [], [], [], [], []
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(",", 3)
            if len(parts) < 3:
                raise CorruptDataError(f"{path}: line {lineno} is not user,item,rating,feature:sentiment ...")
            try:
                users.append(int(parts[0]))
                items.append(int(parts[1]))
                ratings.append(float(parts[2]))
                pairs = [p.split(":") for p in (parts[3].split() if len(parts) > 3 else [])]
                feats.append([int(f) for f, _ in pairs])
                sents.append([int(s) for _, s in pairs])
            except ValueError as exc:
                raise CorruptDataError(f"{path}: line {lineno}: {exc}") from exc
    return pd.DataFrame({"user": users, "item": items, "rating": ratings, "features": feats, "sentiments": sents})


@dataclass
class MterData:
    """An MTER dataset: reviews as (feature, sentiment) tuples plus the id maps."""

    reviews: pd.DataFrame
    feature_names: list[str]
    opinion_words: list[str]
    user_ids: list[str]
    item_asins: list[str]
    item_titles: list[str]

    @property
    def n_users(self) -> int:
        return max(len(self.user_ids), int(self.reviews["user"].max()) + 1)

    @property
    def n_items(self) -> int:
        return max(len(self.item_asins), int(self.reviews["item"].max()) + 1)


def build_mter(files: dict[str, Path]) -> MterData:
    reviews = parse_entry(files["entry"])
    features = [row[0] for row in _parse_map(files["featuremap"], 3)]
    words = [row[0] for row in _parse_map(files["wordmap"], 2)]
    users = [row[0] for row in _parse_map(files["usermap"], 2)]
    item_rows = _parse_map(files["itemmap"], 3)
    return MterData(reviews, features, words, users, [r[0] for r in item_rows], [html.unescape(r[1]) for r in item_rows])
