"""Dataset statistics in the layout of the papers' dataset tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .text import tokenize


def dataset_stats(df: pd.DataFrame, name: str = "") -> pd.DataFrame:
    """One-row table: users, items, reviews, density, reviews per user/item, words per review, mean rating."""
    n_users, n_items, n = df["user"].nunique(), df["item"].nunique(), len(df)
    row = {
        "dataset": name, "users": n_users, "items": n_items, "reviews": n,
        "density %": 100.0 * n / (n_users * n_items) if n_users and n_items else np.nan,
        "reviews / user": n / n_users if n_users else np.nan,
        "reviews / item": n / n_items if n_items else np.nan,
    }
    if "text" in df:
        row["words / review"] = float(np.mean([len(tokenize(t, keep_punct=False)) for t in df["text"]])) if n else np.nan
    if "rating" in df:
        row["mean rating"] = float(df["rating"].mean())
    return pd.DataFrame([row])


def k_core(df: pd.DataFrame, k: int, user: str = "user", item: str = "item") -> pd.DataFrame:
    """The largest subset of ``df``'s rows in which every user and every item has at least ``k`` rows.

    The "k-core" of the Amazon 5-core files (McAuley et al. 2015): rows of users or items with fewer
    than ``k`` are dropped, repeatedly, until none is left. ``k <= 1`` returns ``df`` unchanged.
    """
    if k <= 1:
        return df
    while True:
        keep = (df.groupby(user)[user].transform("size") >= k) & (df.groupby(item)[item].transform("size") >= k)
        if keep.all():
            return df
        df = df[keep]
