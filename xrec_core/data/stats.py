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
