"""Generated review files in every format the data layer reads, for tests and the data benchmark.

The reviews are random but shaped like real ones: every user writes the same number of reviews,
item popularity is skewed, ratings follow a user and an item bias, and each text names a few
product features with an opinion word whose polarity follows the rating (so feature extraction,
language models and rating models all have something to learn). Nothing here is real data.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FEATURES = ("sound", "price", "quality", "battery", "size", "color", "screen", "design", "strap", "cable", "case",
            "button", "smell", "texture", "packaging", "delivery", "material", "weight", "finish", "grip")
POSITIVE = ("great", "excellent", "good", "perfect", "nice", "solid", "lovely", "sturdy")
NEGATIVE = ("bad", "poor", "cheap", "flimsy", "awful", "weak", "broken", "terrible")
FILLER = ("i bought this for my sister", "works as described", "arrived on time", "would buy again",
          "not what i expected", "my kids use it every day", "it does the job", "returned the first one")
#: formats :func:`write_reviews` writes
FORMATS = ("amazon2014", "amazon2018", "yelp-open", "tang-ss", "csv", "tsv", "jsonl", "parquet")


def generate_reviews(n_reviews: int, *, n_users: int | None = None, n_items: int | None = None,
                     seed: int = 0) -> pd.DataFrame:
    """``n_reviews`` random reviews: ``user, item, rating, time, text, summary, tags, item_text``."""
    rng = np.random.default_rng(seed)
    n_users = n_users or max(2, n_reviews // 10)
    n_items = n_items or max(2, n_reviews // 25)
    users = np.arange(n_reviews) % n_users
    rng.shuffle(users)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.6
    items = rng.choice(n_items, size=n_reviews, p=popularity / popularity.sum())
    bias = rng.normal(0, 0.7, n_users)[users] + rng.normal(0, 0.7, n_items)[items]
    ratings = np.clip(np.rint(3.8 + bias + rng.normal(0, 0.6, n_reviews)), 1, 5)
    times = np.sort(rng.integers(1_325_376_000, 1_530_403_200, n_reviews))  # 2012-01-01 .. 2018-07-01
    feats = rng.integers(0, len(FEATURES), (n_reviews, 3))
    words = rng.integers(0, len(POSITIVE), (n_reviews, 3))
    filler = rng.integers(0, len(FILLER), n_reviews)
    good = ratings >= 4
    texts, summaries = [], []
    for r in range(n_reviews):
        opinions = POSITIVE if good[r] else NEGATIVE
        f = [FEATURES[k] for k in feats[r]]
        o = [opinions[k] for k in words[r]]
        texts.append(f"the {f[0]} is {o[0]}. {o[1]} {f[1]} and {o[2]} {f[2]}. {FILLER[filler[r]]}.")
        summaries.append(f"{o[0]} {f[0]}")
    item_feats = rng.integers(0, len(FEATURES), (n_items, 2))
    item_text = [f"a {FEATURES[a]} and {FEATURES[b]} product number {j}" for j, (a, b) in enumerate(item_feats)]
    return pd.DataFrame({
        "user": [f"U{u:07d}" for u in users], "item": [f"I{i:06d}" for i in items], "rating": ratings,
        "time": times, "text": texts, "summary": summaries,
        "tags": [",".join(FEATURES[k] for k in item_feats[i]) for i in items],
        "item_text": [item_text[i] for i in items],
    })


def write_reviews(path: str | os.PathLike, fmt: str, n_reviews: int = 1000, *, seed: int = 0,
                  df: pd.DataFrame | None = None, gzip_level: int = 1) -> Path:
    """Write generated reviews (or ``df``) to ``path`` in ``fmt`` (one of :data:`FORMATS`); a ``.gz`` path is gzipped.

    Tables (``csv``, ``tsv``, ``jsonl``, ``parquet``) use the column names ``reviewer, product, stars,
    body, date`` (ISO dates), ``labels`` and ``title``, so that they need a column map.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df = generate_reviews(n_reviews, seed=seed) if df is None else df
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    table = pd.DataFrame({"reviewer": df["user"], "product": df["item"], "stars": df["rating"], "body": df["text"],
                          "date": pd.to_datetime(df["time"], unit="s").dt.strftime("%Y-%m-%d %H:%M:%S"),
                          "labels": df["tags"], "title": df["item_text"]})
    if fmt == "parquet":
        table.to_parquet(path, index=False)
        return path
    if fmt in ("csv", "tsv"):
        text = table.to_csv(index=False, sep="\t" if fmt == "tsv" else ",")
    elif fmt == "jsonl":
        text = table.to_json(orient="records", lines=True)
    elif fmt == "tang-ss":
        text = "".join(f"{u}\t\t{i}\t\t{int(r)}\t\t{t.replace('. ', ' <sssss> ')}\n"
                       for u, i, r, t in zip(df["user"], df["item"], df["rating"], df["text"]))
    else:
        text = "".join(json.dumps(rec) + "\n" for rec in _records(df, table, fmt))
    data = text.encode("utf-8")
    if path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=gzip_level)
    path.write_bytes(data)
    return path


def _records(df: pd.DataFrame, table: pd.DataFrame, fmt: str) -> Iterator[dict[str, Any]]:
    """JSON records of the Amazon 2014/2018 and Yelp Open formats."""
    cols = [df[c].tolist() for c in ("user", "item", "rating", "time", "text", "summary")]
    for i, (u, it, r, t, text, summary) in enumerate(zip(*cols)):
        if fmt == "amazon2014":
            yield {"reviewerID": u, "asin": it, "reviewerName": "x", "helpful": [0, 0], "reviewText": text,
                   "overall": float(r), "summary": summary, "unixReviewTime": int(t), "reviewTime": "01 1, 2014"}
        elif fmt == "amazon2018":
            rec = {"overall": float(r), "verified": True, "reviewTime": "01 1, 2018", "reviewerID": u, "asin": it,
                   "reviewerName": "x", "reviewText": text, "summary": summary, "unixReviewTime": int(t)}
            if i % 3 == 0:  # as in the real files: optional fields whose presence and types vary
                rec["style"] = {"Size:": " Large"} if i % 2 else {"Color:": " Red", "Format:": " Kindle"}
                rec["vote"] = "1,024"
            yield rec
        else:
            yield {"review_id": f"r{i}", "user_id": u, "business_id": it, "stars": float(r), "useful": 0,
                   "text": text, "date": table["date"].iat[i]}
